"""Data-dependent selections: nonzero, nonzero_static, argwhere, unique,
unique_consecutive (issue 16).

Their output shapes depend on the values, so each one reads a count from the device once
(a bool-mask index, as PyTorch's CPU and CUDA kernels synchronise too); the rest is
composed from sort, cumsum, scatter and gather.  None of them has a gradient (PyTorch's
neither): the inputs are detached."""
from __future__ import annotations

from .. import dtypes as _dt
from ..creation import arange
from ..tensor import register_method
from ._util import Tensor, _wrap_dim, ensure_tensor


def nonzero(x, *, as_tuple: bool = False):
    """The (k, ndim) int64 indices of the non-zero elements in row-major order, or with
    `as_tuple` one 1-D tensor per dim (a 0-d input counts as 1-d there, as PyTorch)."""
    x = ensure_tensor(x, "nonzero").detach()
    flat = x.reshape(-1)
    hits = arange(flat.shape[0], dtype=_dt.int64, device=x.device)[flat != 0]
    coords = []
    stride = 1
    for size in reversed(x.shape):
        coords.append(hits // stride % size if size else hits)
        stride *= size
    coords.reverse()
    if as_tuple:
        return tuple(coords) if x.ndim else (hits,)
    if not coords:
        return hits.new_zeros((hits.shape[0], 0))
    return stack(coords, 1)


def argwhere(x) -> Tensor:
    """The (k, ndim) indices of the non-zero elements (nonzero's default form)."""
    return nonzero(ensure_tensor(x, "argwhere"))


def nonzero_static(x, *, size: int, fill_value: int = -1) -> Tensor:
    """nonzero with a fixed number of rows `size`: cut, or padded with `fill_value`."""
    if not isinstance(size, int) or size < 0:
        raise RuntimeError(f"nonzero_static: size must be a non-negative int, got {size!r}")
    idx = nonzero(ensure_tensor(x, "nonzero_static"))
    k = idx.shape[0]
    if k >= size:
        return idx[:size]
    pad = idx.new_full((size - k, idx.shape[1]), int(fill_value))
    return cat([idx, pad], 0)


def _rows_differ(s: Tensor) -> Tensor:
    """Bool (n,): True where row i of s differs from row i - 1 (row 0 always True)."""
    n = s.shape[0]
    head = s.new_ones((min(n, 1),), dtype=_dt.bool_)
    if n <= 1:
        return head
    ne = s[1:] != s[:-1]
    if ne.ndim > 1:
        ne = ne.reshape(n - 1, -1).any(1)
    return cat([head, ne], 0)


def _runs(s: Tensor, perm: Tensor | None, return_inverse: bool, return_counts: bool):
    """Unique rows of s (n, ...) by runs of equal neighbours; `perm` maps s's rows to the
    input's (None: s is the input's order)."""
    n = s.shape[0]
    new = _rows_differ(s)
    vals = s[new]
    out = [vals]
    run = new.to(_dt.int64).cumsum(0) - 1
    if return_inverse:
        inv = run if perm is None else run.new_zeros((n,)).scatter(0, perm, run)
        out.append(inv)
    if return_counts:
        out.append(run.new_zeros((vals.shape[0],)).scatter_add(0, run, run.new_ones((n,))))
    return out


def _lex_order(rows: Tensor) -> Tensor:
    """The stable permutation that sorts the rows of a 2-D tensor lexicographically
    (a stable sort per column, last column first)."""
    perm = arange(rows.shape[0], dtype=_dt.int64, device=rows.device)
    for j in range(rows.shape[1] - 1, -1, -1):
        perm = perm[argsort(rows[:, j][perm])]
    return perm


def _pack(out: list):
    """The values alone, or the tuple with the inverse and/or counts asked for."""
    return out[0] if len(out) == 1 else tuple(out)


def _unique(x, sorted_: bool, return_inverse: bool, return_counts: bool, dim, op: str):
    x = ensure_tensor(x, op).detach()
    if dim is None:
        flat = x.reshape(-1)
        if sorted_:
            s, perm = sort(flat)
        else:
            s, perm = flat, None
        out = _runs(s, perm, return_inverse, return_counts)
        if return_inverse:
            out[1] = out[1].reshape(x.shape)
        return _pack(out)
    if x.ndim == 0:
        raise IndexError(f"{op}: dim {dim} is out of range for a 0-d tensor")
    d = _wrap_dim(dim, x.ndim, op)
    y = x.movedim(d, 0)
    n = y.shape[0]
    rest = y.shape[1:]
    if 0 in rest:
        raise RuntimeError(f"{op}: dims of size 0 other than dim {d} (shape {tuple(x.shape)}) "
                           "leave no slices to compare")
    if n == 0:
        out = [x]
        empty = x.new_zeros((0,), dtype=_dt.int64)
        out += [empty] * (int(return_inverse) + int(return_counts))
        return _pack(out)
    rows = y.reshape(n, -1)
    perm = _lex_order(rows) if sorted_ else None
    s = y if perm is None else y[perm]
    out = _runs(s, perm, return_inverse, return_counts)
    out[0] = out[0].movedim(0, d)
    return _pack(out)


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim: int | None = None):
    """The distinct elements (or distinct slices along `dim`) in ascending order, with
    the inverse map and the counts when asked.  NaNs never equal each other, so each is
    kept (PyTorch's CPU kernel).  `sorted=False` still returns them sorted (PyTorch leaves
    that order unspecified)."""
    return _unique(x, True, return_inverse, return_counts, dim, "unique")


def unique_consecutive(x, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """One element (or slice along `dim`) of each run of equal neighbours."""
    return _unique(x, False, return_inverse, return_counts, dim, "unique_consecutive")


from .index import argsort, cat, sort, stack  # noqa: E402

_METHODS = {
    "nonzero": nonzero, "argwhere": argwhere, "nonzero_static": nonzero_static,
    "unique": unique, "unique_consecutive": unique_consecutive,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)

__all__ = list(_METHODS)
