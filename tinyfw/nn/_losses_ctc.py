"""``ctc_loss``: Connectionist Temporal Classification (Graves et al. 2006), PyTorch's
arguments and reductions.

The forward (alpha) recursion runs in log space over the time steps, all samples at once,
as tinyfw ops: the gradient (and its derivatives) comes from autograd.  Each step is a
three-way log-sum-exp of the previous alphas at s, s-1 and s-2 (the last only where the
extended label differs from the one two back and is not blank), plus the emission
log-probability; samples whose input is shorter keep their alphas frozen.

The log-sum-exp is guarded so that all -inf terms give -inf with a zero (not NaN)
gradient: impossible alignments give an infinite loss, and `zero_infinity` turns it into
0 with a zero gradient, as PyTorch's.

PyTorch's own backward returns exp(log_probs) - posterior, which is the gradient through a
log_softmax (the two agree once composed with one) but not d loss / d log_probs; this
returns the true derivative (docs/semantics.md, "activations, losses, dropout").
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..creation import tensor
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import maximum, where
from ..ops.index import pad
from ..ops.nn import check_float
from ._losses import _reduction

_NEG_INF = float("-inf")


def _lse(*terms: Tensor) -> Tensor:
    """log(sum(exp(terms))), -inf (zero gradient) when every term is -inf."""
    m = terms[0]
    for t in terms[1:]:
        m = maximum(m, t)
    m = m.detach()  # a shift only: the value does not depend on it
    m = where(m == _NEG_INF, 0.0, m)
    s = None
    for t in terms:
        e = (t - m).exp()
        s = e if s is None else s + e
    empty = s == 0
    return where(empty, _NEG_INF, where(empty, 1.0, s).log() + m)


def _lengths(value, n: int, name: str, op: str) -> list:
    """Lengths (a tensor, a sequence or an int) as n Python ints."""
    if isinstance(value, Tensor):
        if value.dtype.is_floating_point or value.dtype is _dt.bool_:
            raise TypeError(f"{op}: {name} must hold integers, got {value.dtype.name}")
        vals = [int(v) for v in value._host().reshape(-1).tolist()]
    elif isinstance(value, int):
        vals = [value]
    else:
        vals = [int(v) for v in value]
    if len(vals) != n:
        raise RuntimeError(f"{op}: {name} must have {n} entries (one per sample), got "
                           f"{len(vals)}")
    if any(v < 0 for v in vals):
        raise RuntimeError(f"{op}: {name} must be non-negative, got {vals}")
    return vals


def _target_rows(targets, tg_lens: list, unbatched: bool, n_classes: int, op: str) -> list:
    """Each sample's target labels as a list of ints (2-d padded or 1-d concatenated)."""
    t = ensure_tensor(targets, op)
    if t.dtype.is_floating_point or t.dtype is _dt.bool_:
        raise TypeError(f"{op}: targets must hold integer class indices, got {t.dtype.name}")
    host = t._host()
    if unbatched or t.ndim == 1:
        if t.ndim != 1:
            raise RuntimeError(f"{op}: an unbatched input takes 1-d targets, got shape "
                               f"{tuple(t.shape)}")
        flat = [int(v) for v in host.reshape(-1).tolist()]
        if sum(tg_lens) > len(flat):
            raise RuntimeError(f"{op}: target_lengths sum to {sum(tg_lens)} but targets holds "
                               f"{len(flat)} labels")
        rows, at = [], 0
        for k in tg_lens:
            rows.append(flat[at:at + k])
            at += k
    elif t.ndim == 2:
        if t.shape[0] != len(tg_lens):
            raise RuntimeError(f"{op}: targets has {t.shape[0]} rows for {len(tg_lens)} "
                               "samples")
        if tg_lens and max(tg_lens) > t.shape[1]:
            raise RuntimeError(f"{op}: a target length {max(tg_lens)} exceeds the targets' "
                               f"width {t.shape[1]}")
        table = host.tolist()
        rows = [[int(v) for v in table[i][:k]] for i, k in enumerate(tg_lens)]
    else:
        raise RuntimeError(f"{op}: targets must be 1-d or 2-d, got shape {tuple(t.shape)}")
    for r in rows:
        for v in r:
            if not 0 <= v < n_classes:
                raise IndexError(f"{op}: target label {v} is out of range for {n_classes} "
                                 "classes")
    return rows


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Negative log-likelihood of each target sequence under the CTC alignment model.

    log_probs: (T, N, C) or unbatched (T, C) log-probabilities; targets: (N, S) padded or
    the concatenation of all targets (1-d); input_lengths, target_lengths: N lengths.
    'mean' divides each loss by its target length (at least 1), then averages."""
    op = "ctc_loss"
    red = _reduction(None, None, reduction, op)
    lp = ensure_tensor(log_probs, op)
    check_float(lp, op, "log_probs")
    if lp.ndim not in (2, 3):
        raise RuntimeError(f"{op}: log_probs must be (T, N, C) or (T, C), got shape "
                           f"{tuple(lp.shape)}")
    if lp.numel() == 0:
        raise RuntimeError(f"{op}: log_probs must not be empty, got shape {tuple(lp.shape)}")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp.unsqueeze(1)
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise ValueError(f"{op}: blank {blank} is out of range for {C} classes")
    in_lens = _lengths(input_lengths, N, "input_lengths", op)
    tg_lens = _lengths(target_lengths, N, "target_lengths", op)
    if in_lens and max(in_lens) > T:
        raise RuntimeError(f"{op}: input_lengths must be at most T={T}, got {max(in_lens)}")
    rows = _target_rows(targets, tg_lens, unbatched, C, op)

    # extended labels: blank, l1, blank, l2, ..., blank; blank-padded to the longest
    L = 2 * max(tg_lens, default=0) + 1
    ext, skip = [], []
    for r in rows:
        e = [blank] * L
        e[1:2 * len(r):2] = r
        ext.append(e)
        skip.append([s >= 2 and e[s] != blank and e[s] != e[s - 2] for s in range(L)])
    dev = lp.device
    ext_t = tensor(ext, dtype=_dt.int64, device=dev).reshape(N, L)
    skip_t = tensor(skip, dtype=_dt.bool_, device=dev).reshape(N, L)
    emit = lp.gather(2, ext_t.unsqueeze(0).expand(T, N, L))  # (T, N, L)
    steps = tensor([[t < k for k in in_lens] for t in range(T)], dtype=_dt.bool_,
                   device=dev).reshape(T, N, 1)

    # alpha before the first step: probability 1 at s = 0, so that step 0 starts the
    # paths at the first blank or the first label through the same recursion
    alpha = tensor([[0.0] + [_NEG_INF] * (L - 1)] * N, dtype=lp.dtype, device=dev).reshape(N, L)
    for t in range(T):
        one = pad(alpha[:, :L - 1], (1, 0), value=_NEG_INF)
        two = where(skip_t, pad(alpha[:, :max(L - 2, 0)], (min(2, L), 0), value=_NEG_INF),
                    _NEG_INF)
        alpha = where(steps[t], _lse(alpha, one, two) + emit[t], alpha)

    last = tensor([[2 * k] for k in tg_lens], dtype=_dt.int64, device=dev).reshape(N, 1)
    before = tensor([[max(2 * k - 1, 0)] for k in tg_lens], dtype=_dt.int64,
                    device=dev).reshape(N, 1)
    has_label = tensor([[k > 0] for k in tg_lens], dtype=_dt.bool_, device=dev).reshape(N, 1)
    end = _lse(alpha.gather(1, last), where(has_label, alpha.gather(1, before), _NEG_INF))
    loss = -end.reshape(N)
    if zero_infinity:
        loss = where(loss == float("inf"), 0.0, loss)
    if red == "none":
        return loss.reshape(()) if unbatched else loss
    if red == "sum":
        return loss.sum()
    denom = tensor([max(k, 1) for k in tg_lens], dtype=lp.dtype, device=dev).reshape(N)
    return (loss / denom).mean()
