"""Lookups in an embedding table: `embedding` and `embedding_bag` (sums, means or maxes of
bags of rows), with PyTorch's max_norm (rows renormalised in place before the lookup) and
scale_grad_by_freq (each row's gradient divided by how often the mini-batch uses it).

sparse=True asks for a sparse gradient, and tinyfw has no sparse tensors (the exclusion
in tools/api_coverage.py): it raises.  The bags are gathered into a padded (bags, longest,
dim) block and reduced under a mask: the gradients are those of gather, sum and max."""
from __future__ import annotations

from collections import Counter

from .. import creation
from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import where
from ._losses import int_bounds, read


def _check_table(op: str, idx: Tensor, w: Tensor, sparse: bool) -> None:
    if sparse:
        raise ValueError(f"{op}: sparse=True needs sparse gradients, which tinyfw does not "
                         "have; use the default dense gradient")
    if idx.dtype.is_floating_point or idx.dtype is _dt.bool_:
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype.name}")
    if w.ndim != 2:
        raise RuntimeError(f"{op}: weight must be 2-d (num_embeddings, dim), got shape "
                           f"{tuple(w.shape)}")
    n = w.shape[0]
    bounds = int_bounds(idx)
    if bounds is not None and (bounds[0] < 0 or bounds[1] >= n):
        first = read(idx[(idx < 0) | (idx >= n)].reshape(-1)[0])
        raise IndexError(f"{op}: index {first} is out of range for {n} embeddings")


def _padding(op: str, padding_idx: int | None, n: int) -> int | None:
    if padding_idx is None:
        return None
    if not -n <= padding_idx < n:
        raise ValueError(f"{op}: padding_idx {padding_idx} is out of range for {n} embeddings")
    return padding_idx % n


def renorm_rows_(weight: Tensor, idx: Tensor, max_norm: float, norm_type: float) -> None:
    """Scale each row of `weight` that `idx` uses and whose norm exceeds max_norm down to
    max_norm (in place, outside autograd: PyTorch's embedding_renorm_, 1e-7 included)."""
    if idx.numel() == 0:
        return
    with no_grad():
        rows = creation.tensor(sorted(set(idx.reshape(-1).tolist())), dtype=_dt.int64,
                               device=weight.device)
        picked = weight.index_select(0, rows)
        norms = picked.norm(norm_type, 1, keepdim=True)
        scale = where(norms > max_norm, max_norm / (norms + 1e-7), norms * 0 + 1)
        weight[rows] = picked * scale


def _scale_grad_by_freq(out: Tensor, lookups: Tensor, batch: Tensor) -> Tensor:
    """out (= weight[lookups]) unchanged, its gradient divided per lookup by how often
    that index occurs in the mini-batch `batch`."""
    counts = Counter(batch.reshape(-1).tolist())
    inv = creation.tensor([1.0 / max(counts[i], 1) for i in lookups.reshape(-1).tolist()],
                          dtype=out.dtype, device=out.device).reshape(*lookups.shape, 1)
    frozen = out.detach()
    return frozen + (out - frozen) * inv  # value exactly out; gradient scaled by inv


def embedding(input, weight, padding_idx: int | None = None, max_norm=None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer tensor `input`; lookups
    of padding_idx get no gradient."""
    op = "embedding"
    idx, w = ensure_tensor(input, op), ensure_tensor(weight, op)
    _check_table(op, idx, w, sparse)
    pad = _padding(op, padding_idx, w.shape[0])
    if max_norm is not None:
        renorm_rows_(w, idx, max_norm, norm_type)
    out = w[idx]
    if pad is not None:
        out = where((idx == pad).unsqueeze(-1), out.detach(), out)
    if scale_grad_by_freq and out.requires_grad:
        out = _scale_grad_by_freq(out, idx, idx)
    return out


def _bags(op: str, idx: Tensor, offsets, include_last_offset: bool):
    """(positions (B, L) into the flat input, valid (B, L) bool) for 1-d input + offsets."""
    n = idx.shape[0]
    if offsets is None:
        raise ValueError(f"{op}: offsets is required when input is 1-d")
    offs = ensure_tensor(offsets, op)
    if offs.ndim != 1 or offs.dtype.is_floating_point or offs.dtype is _dt.bool_:
        raise ValueError(f"{op}: offsets must be a 1-d integer tensor, got {offs.dtype.name} "
                         f"of shape {tuple(offs.shape)}")
    starts = offs.tolist()
    if include_last_offset:
        if not starts:
            raise ValueError(f"{op}: include_last_offset needs at least one offset")
        ends = starts[1:]
        starts = starts[:-1]
    else:
        ends = starts[1:] + [n]
    if starts and starts[0] != 0:
        raise ValueError(f"{op}: offsets[0] must be 0, got {starts[0]}")
    for s, e in zip(starts, ends):
        if not 0 <= s <= e <= n:
            raise ValueError(f"{op}: offsets must be non-decreasing and within the input's "
                             f"{n} entries, got a bag [{s}, {e})")
    longest = max((e - s for s, e in zip(starts, ends)), default=0)
    pos = [[s + j if s + j < e else 0 for j in range(longest)] for s, e in zip(starts, ends)]
    valid = [[s + j < e for j in range(longest)] for s, e in zip(starts, ends)]
    dev = idx.device
    return (creation.tensor(pos, dtype=_dt.int64, device=dev).reshape(len(starts), longest),
            creation.tensor(valid, dtype=_dt.bool_, device=dev).reshape(len(starts), longest))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights=None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """The sum, mean or max of each bag of rows of `weight`: bags are the rows of a 2-d
    `input`, or the runs of a 1-d `input` starting at `offsets`.  Entries equal to
    padding_idx are left out of their bag (and of a mean's count); an empty bag gives
    zeros.  per_sample_weights (input's shape, mode 'sum' only) scale each row first."""
    op = "embedding_bag"
    idx, w = ensure_tensor(input, op), ensure_tensor(weight, op)
    _check_table(op, idx, w, sparse)
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    pad = _padding(op, padding_idx, w.shape[0])
    psw = None if per_sample_weights is None else ensure_tensor(per_sample_weights, op)
    if psw is not None:
        if mode != "sum":
            raise ValueError(f"{op}: per_sample_weights is only supported with mode='sum', "
                             f"got mode={mode!r}")
        if tuple(psw.shape) != tuple(idx.shape):
            raise ValueError(f"{op}: per_sample_weights of shape {tuple(psw.shape)} must have "
                             f"input's shape {tuple(idx.shape)}")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None when input is 2-d (each row is a bag)")
        bag_idx, valid = idx, creation.ones(*idx.shape, dtype=_dt.bool_, device=idx.device)
        bag_psw = psw
    elif idx.ndim == 1:
        pos, valid = _bags(op, idx, offsets, include_last_offset)
        bag_idx = idx[pos] if idx.numel() else creation.zeros(*pos.shape, dtype=idx.dtype,
                                                              device=idx.device)
        bag_psw = None if psw is None else psw[pos]
    else:
        raise ValueError(f"{op}: input must be 1-d (with offsets) or 2-d, got shape "
                         f"{tuple(idx.shape)}")
    if max_norm is not None:
        renorm_rows_(w, idx, max_norm, norm_type)
    if pad is not None:
        valid = valid & (bag_idx != pad)
    rows = w[bag_idx]  # (B, L, D)
    if scale_grad_by_freq and rows.requires_grad:
        rows = _scale_grad_by_freq(rows, bag_idx, idx)
    if bag_psw is not None:
        rows = rows * bag_psw.unsqueeze(-1)
    keep = valid.unsqueeze(-1)
    if mode == "max":
        best = where(keep, rows, float("-inf")).max(1).values
        return where(valid.any(1, keepdim=True), best, 0.0)
    total = where(keep, rows, 0.0).sum(1)
    if mode == "sum":
        return total
    count = valid.sum(1, keepdim=True).to(total.dtype)
    return total / count.clamp(min=1)
