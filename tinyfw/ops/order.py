"""Order statistics: median, nanmedian, kthvalue, mode, quantile, nanquantile, msort
(issue 16).

All are compositions over the stable sort (tinyfw/ops/index.py): the chosen element is
found by position in the sorted order, its index read from the sort's indices, and the
value gathered from the input at that index, so the gradient flows to exactly that
element (PyTorch's rule for value-selecting reductions).  Ties pick the element a stable
sort puts at the position; PyTorch's CPU kernels pick among ties by their own selection
algorithm (docs/semantics.md, "order statistics")."""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import register_method
from ._util import Tensor, _wrap_dim, ensure_tensor

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _flat_dim(x: Tensor, dim, op: str):
    """(x seen with the reduced dim, that dim); dim=None flattens x."""
    if dim is None:
        return x.reshape(-1), 0
    if x.ndim == 0:
        _wrap_dim(dim, 1, op)
        return x.reshape(1), 0
    return x, _wrap_dim(dim, x.ndim, op)


def _finish(v: Tensor, i: Tensor, x: Tensor, dim, keepdim: bool):
    """Drop (or keep) the selected dim, as the op's caller asked."""
    if dim is None or x.ndim == 0:
        return v.reshape(()), i.reshape(())
    d = _wrap_dim(dim, x.ndim, "select")
    return (v, i) if keepdim else (v.squeeze(d), i.squeeze(d))


def _select(x: Tensor, d: int, pos: Tensor, idx: Tensor):
    """Value and index at sorted position `pos` (keepdim shape, int64) along dim d."""
    i = idx.gather(d, pos)
    return x.gather(d, i), i


def _count_not_nan(x: Tensor, d: int) -> Tensor:
    if not x.dtype.is_floating_point:
        return x.new_full(x.shape[:d] + (1,) + x.shape[d + 1:], x.shape[d], dtype=_dt.int64)
    return (~x.isnan()).sum(d, keepdim=True)


def _median(x, dim, keepdim: bool, ignore_nan: bool, op: str):
    x = ensure_tensor(x, op)
    y, d = _flat_dim(x, dim, op)
    n = y.shape[d]
    if n == 0:
        if dim is None:
            if not x.dtype.is_floating_point:
                raise RuntimeError(f"{op}: an empty integer tensor has no median")
            return x.new_full((), float("nan"))
        raise IndexError(f"{op}: cannot reduce over dim {d} of size 0 (shape "
                         f"{tuple(x.shape)})")
    idx = argsort(y, d)
    count = _count_not_nan(y, d)
    if ignore_nan:
        # the lower median of the non-NaN values (NaN at position 0 when all are NaN)
        pos = ((count - 1).clamp(min=0)) // 2
    else:
        # a NaN in the slice makes it the median: the first NaN in sorted order
        pos = where(count < n, count, (n - 1) // 2)
    v, i = _select(y, d, pos, idx)
    v, i = _finish(v, i, x, dim, keepdim)
    return v if dim is None else values_indices(v, i)


def median(x, dim: int | None = None, keepdim: bool = False):
    """The lower median: over all elements (a value), or (values, indices) along `dim`.
    NaN anywhere in a slice makes NaN the median, with the index of its first NaN."""
    return _median(x, dim, keepdim, False, "median")


def nanmedian(x, dim: int | None = None, keepdim: bool = False):
    """median ignoring NaNs (NaN only where a slice has nothing else)."""
    return _median(x, dim, keepdim, True, "nanmedian")


def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the k-th smallest element (1-based) along `dim`; NaN sorts as
    the largest value."""
    x = ensure_tensor(x, "kthvalue")
    y, d = _flat_dim(x, dim, "kthvalue")
    n = y.shape[d]
    if not isinstance(k, int) or not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k={k!r} is out of range for dim {d} of size {n} "
                           f"(shape {tuple(x.shape)})")
    idx = argsort(y, d).narrow(d, k - 1, 1)
    v, i = _finish(y.gather(d, idx), idx, x, dim, keepdim)
    return values_indices(v, i)


def mode(x, dim: int = -1, keepdim: bool = False):
    """(values, indices): the most frequent value along `dim` (the smallest of equally
    frequent ones) and the last index where it occurs.  NaNs never equal each other, so
    each counts once (docs/semantics.md)."""
    x = ensure_tensor(x, "mode")
    y, d = _flat_dim(x, dim, "mode")
    n = y.shape[d]
    if n == 0:
        raise IndexError(f"mode: cannot reduce over dim {d} of size 0 (shape "
                         f"{tuple(x.shape)})")
    s, idx = sort(y.detach(), d)
    # runs of equal values in sorted order: run ids, then each run's length at its members
    new = s.narrow(d, 1, n - 1) != s.narrow(d, 0, n - 1)
    first = new.new_ones(new.shape[:d] + (1,) + new.shape[d + 1:])
    run = cat([first, new], d).to(_dt.int64).cumsum(d) - 1
    length = y.new_zeros(run.shape, dtype=_dt.int64).scatter_add(d, run, run.new_ones(run.shape))
    per_pos = length.gather(d, run)
    best = per_pos.argmax(d, keepdim=True)  # first = smallest value among the most frequent
    i = idx.gather(d, best + per_pos.gather(d, best) - 1)  # the run's last original index
    v, i = _finish(y.gather(d, i), i, x, dim, keepdim)
    return values_indices(v, i)


def msort(x) -> Tensor:
    """x sorted along its first dim (sort(x, 0).values)."""
    x = ensure_tensor(x, "msort")
    return sort(x, 0).values


def _lerp(a: Tensor, b: Tensor, w: Tensor) -> Tensor:
    # PyTorch's lerp: exact at both ends (w = 0 gives a, w = 1 gives b)
    return where(w < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _quantile(x, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool, op: str):
    x = ensure_tensor(x, op)
    if x.dtype not in (_dt.float32, _dt.float64):
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype.name}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{op}: interpolation must be one of {', '.join(_INTERPOLATIONS)}, "
                         f"got {interpolation!r}")
    scalar_q = not isinstance(q, Tensor) or q.ndim == 0
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{op}: q must be a scalar or 1-D tensor, got shape "
                               f"{tuple(q.shape)}")
        if q.dtype is not x.dtype:
            raise TypeError(f"{op}: q must have the input's dtype {x.dtype.name}, got "
                            f"{q.dtype.name}")
        qs = q.detach().reshape(-1)
        if qs.numel() and bool(((qs < 0) | (qs > 1)).any()):
            raise RuntimeError(f"{op}: q values must be in the range [0, 1]")
    else:
        if not 0 <= float(q) <= 1:
            raise RuntimeError(f"{op}: q must be in the range [0, 1], got {q}")
        qs = x.new_full((1,), float(q))
    y, d = _flat_dim(x, dim, op)
    n = y.shape[d]
    kshape = y.shape[:d] + (1,) + y.shape[d + 1:]
    nq = qs.shape[0]
    qb = qs.reshape((nq,) + (1,) * len(kshape))
    if x.numel() == 0:
        raise RuntimeError(f"{op}: input tensor must be non-empty (shape {tuple(x.shape)})")
    s = sort(y, d).values
    count = _count_not_nan(y.detach(), d).to(x.dtype)
    if ignore_nan:
        rank = qb * (count - 1).clamp(min=0)
    else:
        # a NaN in the slice: rank the last position, where the sort put a NaN
        rank = where(count < n, float(n - 1), qb * (n - 1))
    lo = rank.floor().clamp(0, n - 1)
    hi = rank.ceil().clamp(0, n - 1)
    if interpolation == "nearest":
        lo = hi = rank.round()
    elif interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    sq = s.unsqueeze(0).expand(nq, *s.shape)
    vlo = sq.gather(d + 1, lo.to(_dt.int64))
    if interpolation in ("linear", "midpoint"):
        vhi = sq.gather(d + 1, hi.to(_dt.int64))
        w = rank - lo if interpolation == "linear" else rank.new_full(rank.shape, 0.5)
        out = _lerp(vlo, vhi, w)
    else:
        out = vlo
    # shape: (nq,) + the kept dims of x
    if dim is None:
        out = out.reshape((nq,) + ((1,) * x.ndim if keepdim else ()))
    elif not keepdim and x.ndim:
        out = out.squeeze(d + 1)
    elif x.ndim == 0:
        out = out.reshape((nq,))
    return out.squeeze(0) if scalar_q else out


def quantile(x, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles (q a float or a 1-D tensor in [0, 1]; a tensor q puts its dim
    first) along `dim` or of all elements; a NaN in a slice gives NaN."""
    return _quantile(x, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(x, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """quantile of the non-NaN values (NaN only where a slice has nothing else)."""
    return _quantile(x, q, dim, keepdim, interpolation, True, "nanquantile")


from .elementwise import where  # noqa: E402
from .index import argsort, cat, sort  # noqa: E402
from .reduce import values_indices  # noqa: E402

_METHODS = {
    "median": median, "nanmedian": nanmedian, "kthvalue": kthvalue, "mode": mode,
    "msort": msort, "quantile": quantile, "nanquantile": nanquantile,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)

__all__ = list(_METHODS)
