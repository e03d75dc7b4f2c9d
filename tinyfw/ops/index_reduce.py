"""Scatter reductions and index ops of issue 16: scatter_reduce (sum, prod, mean, amax,
amin, with or without x's own values), index_add / index_copy / index_fill /
index_reduce, take / take_along_dim / put, masked_scatter, and the function index_put_.

`ScatterReduce` and `IndexReduce` (index_add, index_reduce: whole slices along a dim)
are the new kernels (ref: `backend/ref_index.py`, C++: `csrc/index_reduce.cpp`); their
gradients are one formula, the index_* ones seeing the 1-d index broadcast over the
source (a stride-0 view).  index_copy is `index_put` (its C++ kernel copies rows).  The gradients follow PyTorch's formulas: amax/amin split the gradient evenly
between the tied maxima (x's value included), prod divides by the value except where it
is 0 (then the product of the others, computed again with that 0 masked).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import register_method
from ._opmeta import no_flops
from ._util import Tensor, _wrap_dim, apply, ensure_tensor
from .elementwise import where
from .index import (Gather, ScatterAdd, Scatter, _check_gather_shapes, _check_index_tensor,
                    _check_range, getitem, index_bounds, index_put, index_select)
from .shape import reshape

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


class ScatterReduce(Function):
    autocast = None
    save_inputs = True
    save_output = True
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, index, src, dim, reduce, include_self):
        ctx.dim, ctx.reduce, ctx.include_self, ctx.src_shape = dim, reduce, include_self, src.shape
        return B.scatter_reduce(x, dim, index, src, reduce, include_self)

    def backward(self, g):
        x, idx, src = self.saved_inputs
        return _scatter_reduce_grad(g, x, idx, src, self.output, self.dim, self.reduce,
                                    self.include_self, self.src_shape)


def _scatter_reduce_grad(g, x, idx, src, out, d, red, inc, src_shape):
    """(grad of x, None, grad of src) of scatter_reduce (PyTorch's formulas), in tinyfw ops."""

    def gather(t):
        return apply(Gather, (t, idx), {"dim": d})

    if tuple(src.shape) != tuple(idx.shape):  # only the corner index addresses counts
        src = src[tuple(slice(0, n) for n in idx.shape)]
    if red == "sum":
        gx, gsrc = g, gather(g)
    elif red == "mean":
        n = g.new_ones(g.shape) if inc else g.new_zeros(g.shape)
        n = apply(ScatterAdd, (n, idx, g.new_ones(idx.shape)), {"dim": d})
        n = where(n == 0, n.new_ones(()), n)
        gx, gsrc = g / n, gather(g) / gather(n)
    elif red == "prod":
        one = x.new_ones(())
        masked_x = where(x == 0, one, x)
        gx = g * _reduce(masked_x, idx, src, d, "prod", inc) / masked_x
        src_zero = src == 0
        zeros = apply(ScatterAdd, (x.new_zeros(x.shape), idx, src_zero.to(x.dtype)), {"dim": d})
        single = src_zero & (gather(zeros) == 1)
        others = _reduce(x, idx, where(single, one, src), d, "prod", inc)
        gsrc = where(single, gather(g * others), gather(g * out) / where(src_zero, one, src))
    else:  # amax / amin: the gradient shared evenly by every value equal to the result
        value = gather(out)
        x_hit, src_hit = x == out, src == value
        n = apply(ScatterAdd, (x_hit.to(g.dtype), idx, src_hit.to(g.dtype)), {"dim": d})
        share = g / n
        zero = g.new_zeros(())
        gx = where(x_hit, share, zero)
        gsrc = where(src_hit, gather(share), zero)
    if not inc:  # x's values at the positions scattered to were not used
        gx = apply(Scatter, (gx, idx, gx.new_zeros(idx.shape)), {"dim": d})
    if tuple(gsrc.shape) != tuple(src_shape):
        gsrc = gsrc.new_zeros(src_shape).index_put_slice(gsrc)
    return gx, None, gsrc


class IndexReduce(Function):
    """index_reduce / index_add: src's slice i along `dim` reduced into x's slice
    index[i] (a 1-d index); the gradients are scatter_reduce's with the index broadcast."""
    autocast = None
    save_inputs = True
    save_output = True
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, index, src, dim, reduce, include_self):
        ctx.dim, ctx.reduce, ctx.include_self, ctx.src_shape = dim, reduce, include_self, src.shape
        return B.index_reduce(x, dim, index, src, reduce, include_self)

    def backward(self, g):
        x, index, src = self.saved_inputs
        d = self.dim
        if self.reduce == "sum" and self.include_self:  # index_add: no broadcast index needed
            gsrc = index_select(g, d, index) if self.next[2] is not None else None
            return g, None, gsrc
        view = (1,) * d + (index.shape[0],) + (1,) * (x.ndim - d - 1)
        idx = reshape(index, view).expand(*src.shape)
        return _scatter_reduce_grad(g, x, idx, src, self.output, d, self.reduce,
                                    self.include_self, self.src_shape)


def _reduce(x, idx, src, d, reduce, include_self) -> Tensor:
    return apply(ScatterReduce, (x, idx, src),
                 {"dim": d, "reduce": reduce, "include_self": include_self})


def _same_dtype(x: Tensor, src: Tensor, op: str) -> None:
    if src.dtype is not x.dtype:
        raise RuntimeError(f"{op}: expected self and source to have the same dtype, got "
                           f"{x.dtype.name} and {src.dtype.name}")


def scatter_reduce(x, dim: int, index, src, reduce: str, *, include_self: bool = True) -> Tensor:
    """A copy of x where each position that `index` addresses along `dim` becomes the
    `reduce` ("sum", "prod", "mean", "amax", "amin") of the src values scattered there,
    and of its own value when `include_self`."""
    x, index, src = (ensure_tensor(v, "scatter_reduce") for v in (x, index, src))
    if reduce not in _REDUCES:
        raise RuntimeError(f"scatter_reduce: reduce argument must be one of {_REDUCES}, "
                           f"got {reduce!r}")
    _check_index_tensor(index, "scatter_reduce")
    _same_dtype(x, src, "scatter_reduce")
    d = _wrap_dim(dim, x.ndim, "scatter_reduce")
    _check_gather_shapes(x, index, d, "scatter_reduce")
    _check_gather_shapes(src, index, d if src.ndim else 0, "scatter_reduce")
    if x.ndim == 0:
        x1 = reshape(x, 1)
        return reshape(scatter_reduce(x1, 0, reshape(index, -1), reshape(src, -1), reduce,
                                      include_self=include_self), ())
    _check_range(index, x.shape[d], "scatter_reduce", d)
    return _reduce(x, index, src, d, reduce, bool(include_self))


# -- the index_* family: a 1-d index along `dim`, one slice of source per entry ---------
def _index_arg(x: Tensor, dim: int, index, op: str) -> tuple:
    index = ensure_tensor(index, op)
    if index.ndim > 1:
        raise IndexError(f"{op}: index should have 1 dimension or less, got shape "
                         f"{tuple(index.shape)}")
    if index.dtype not in (_dt.int64, _dt.int32):
        raise TypeError(f"{op}: index must be int64 or int32, got {index.dtype.name}")
    d = _wrap_dim(dim, max(x.ndim, 1), op)
    return reshape(index, -1), d


def _index_family(x, dim, index, source, op: str):
    """(x, 1-d index, source, dim), checked; a 0-d x is seen as 1-d (dim 0)."""
    x, source = ensure_tensor(x, op), ensure_tensor(source, op)
    index, d = _index_arg(x, dim, index, op)
    _same_dtype(x, source, op)
    if x.ndim == 0:
        x, source = reshape(x, 1), reshape(source, -1)
    want = tuple(x.shape[:d]) + (index.shape[0],) + tuple(x.shape[d + 1:])
    if tuple(source.shape) != want:
        raise RuntimeError(f"{op}: source of shape {tuple(source.shape)} does not match self "
                           f"{tuple(x.shape)} with dim {d} of size len(index) = "
                           f"{index.shape[0]} (expected {want})")
    _check_range(index, x.shape[d], op, d)
    return x, index, source, d


def _index_reduce(x0, dim, index, source, reduce, include_self, op) -> Tensor:
    x, index, source, d = _index_family(x0, dim, index, source, op)
    out = apply(IndexReduce, (x, index, source),
                {"dim": d, "reduce": reduce, "include_self": bool(include_self)})
    return reshape(out, ()) if ensure_tensor(x0, op).ndim == 0 else out


def index_add(x, dim: int, index, source, *, alpha=1) -> Tensor:
    """A copy of x with alpha * source[..., i, ...] added at x[..., index[i], ...] along
    `dim` (duplicates summed in index order)."""
    if alpha != 1:
        source = ensure_tensor(source, "index_add") * alpha
    return _index_reduce(x, dim, index, source, "sum", True, "index_add")


def index_copy(x, dim: int, index, source) -> Tensor:
    """A copy of x with x[..., index[i], ...] = source[..., i, ...] along `dim`."""
    x0 = ensure_tensor(x, "index_copy")
    x, index, source, d = _index_family(x, dim, index, source, "index_copy")
    out = index_put(x, (slice(None),) * d + (index,), source)
    return reshape(out, ()) if x0.ndim == 0 else out


def index_reduce(x, dim: int, index, source, reduce: str, *, include_self: bool = True) -> Tensor:
    """A copy of x where x[..., index[i], ...] along `dim` becomes the `reduce` ("prod",
    "mean", "amax", "amin") of the source slices sent there (and of itself when
    `include_self`)."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce: reduce argument must be one of prod, mean, amax or "
                           f"amin, got {reduce!r}")
    return _index_reduce(x, dim, index, source, reduce, include_self, "index_reduce")


def index_fill(x, dim: int, index, value) -> Tensor:
    """A copy of x with `value` (a number or a 0-d tensor) at the positions `index`
    along `dim` (negative indices count from the end)."""
    x = ensure_tensor(x, "index_fill")
    index, d = _index_arg(x, dim, index, "index_fill")
    n = x.shape[d] if x.ndim else 1
    bounds = index_bounds(index)
    if bounds is not None and (bounds[0] < -n or bounds[1] >= n):
        bad = bounds[0] if bounds[0] < -n else bounds[1]
        raise IndexError(f"index_fill: index {bad} is out of bounds for dim {d} with size {n}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"index_fill: only supports a 0-dimensional value tensor, got "
                               f"shape {tuple(value.shape)}")
        value = value.to(x.dtype)
    else:
        value = x.new_full((), value)
    mask = index_put(x.new_zeros((n,), dtype=_dt.bool_), (index,), x.new_ones((), dtype=_dt.bool_))
    if x.ndim:
        mask = reshape(mask, (n,) + (1,) * (x.ndim - d - 1))
    else:
        mask = reshape(mask, ())
    return where(mask, value, x)


# -- flat and along-dim takes ------------------------------------------------------------
def _flat_index(index: Tensor, n: int, op: str) -> Tensor:
    _check_index_tensor(index, op)
    bounds = index_bounds(index)
    if bounds is not None and (bounds[0] < -n or bounds[1] >= n):
        bad = bounds[0] if bounds[0] < -n else bounds[1]
        raise IndexError(f"{op}: index {bad} out of range for tensor of size {n}")
    return index


def take(x, index) -> Tensor:
    """The elements of x, read as 1-d, at `index` (any shape; negative from the end)."""
    x, index = ensure_tensor(x, "take"), ensure_tensor(index, "take")
    flat = reshape(x, -1)
    _flat_index(index, flat.shape[0], "take")
    return getitem(flat, index)


def take_along_dim(x, indices, dim: int | None = None) -> Tensor:
    """x's values at `indices` along `dim` (x and indices broadcast in the other dims);
    with dim=None, along the flattened x."""
    x, indices = ensure_tensor(x, "take_along_dim"), ensure_tensor(indices, "take_along_dim")
    _check_index_tensor(indices, "take_along_dim")
    if dim is None:
        return take_along_dim(reshape(x, -1), reshape(indices, -1), 0)
    if x.ndim != indices.ndim:
        raise RuntimeError(f"take_along_dim: input and indices should have the same number of "
                           f"dimensions, but got {x.ndim} and {indices.ndim}")
    d = _wrap_dim(dim, max(x.ndim, 1), "take_along_dim")
    if x.ndim == 0:
        return take(x, indices)
    from ._util import broadcast_shapes

    n = x.shape[d]
    rest = broadcast_shapes(tuple(s for k, s in enumerate(x.shape) if k != d),
                            tuple(s for k, s in enumerate(indices.shape) if k != d),
                            op="take_along_dim")
    xs = rest[:d] + (n,) + rest[d:]
    ish = rest[:d] + (indices.shape[d],) + rest[d:]
    xb = x if tuple(x.shape) == xs else x.expand(*xs)
    ib = indices if tuple(indices.shape) == ish else indices.expand(*ish)
    bounds = index_bounds(ib)
    if bounds is not None and (bounds[0] < -n or bounds[1] >= n):
        bad = bounds[0] if bounds[0] < -n else bounds[1]
        raise IndexError(f"take_along_dim: index {bad} is out of bounds for dim {d} with size {n}")
    if bounds is not None and bounds[0] < 0:
        ib = where(ib < 0, ib + n, ib)
    return apply(Gather, (xb, ib), {"dim": d})


def put(x, index, source, accumulate: bool = False) -> Tensor:
    """A copy of x with source's elements written (or added, with `accumulate`) at the
    flat positions `index` of x read as 1-d."""
    x, index, source = (ensure_tensor(v, "put") for v in (x, index, source))
    if index.numel() != source.numel():
        raise RuntimeError(f"put: expected source and index to have the same number of "
                           f"elements, got {source.numel()} and {index.numel()}")
    _same_dtype(x, source, "put")
    flat = reshape(x, -1)
    _flat_index(index, flat.shape[0], "put")
    out = index_put(flat, (reshape(index, -1),), reshape(source, -1), accumulate)
    return reshape(out, x.shape)


def masked_scatter(x, mask, source) -> Tensor:
    """A copy of x (broadcast with mask) whose positions where the bool `mask` is True
    take source's first elements, in row-major order."""
    from ._util import broadcast_shapes

    x, mask, source = (ensure_tensor(v, "masked_scatter") for v in (x, mask, source))
    if mask.dtype is not _dt.bool_:
        raise RuntimeError(f"masked_scatter: expected a bool mask, got {mask.dtype.name}")
    _same_dtype(x, source, "masked_scatter")
    shape = broadcast_shapes(tuple(x.shape), tuple(mask.shape), op="masked_scatter")
    xb = x if tuple(x.shape) == shape else x.expand(*shape)
    mb = mask if tuple(mask.shape) == shape else mask.expand(*shape)
    k = int(mb.sum().item()) if mb.numel() else 0
    if source.numel() < k:
        raise RuntimeError(f"masked_scatter: the mask selects {k} elements but source has "
                           f"only {source.numel()}")
    vals = reshape(source, -1)[:k]
    return index_put(xb, (mb,), vals)


def index_put_(x: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """In place: x[indices] = values (or += with `accumulate`)."""
    return x.index_put_(indices, values, accumulate)


_METHODS = {
    "scatter_reduce": scatter_reduce, "index_add": index_add, "index_copy": index_copy,
    "index_reduce": index_reduce, "index_fill": index_fill, "take": take,
    "take_along_dim": take_along_dim, "put": put, "masked_scatter": masked_scatter,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)


def _register_inplace() -> None:
    from .inplace import _inplace

    for name, fn in {"scatter_reduce_": scatter_reduce, "index_add_": index_add,
                     "index_copy_": index_copy, "index_reduce_": index_reduce,
                     "index_fill_": index_fill, "put_": put,
                     "masked_scatter_": masked_scatter}.items():
        register_method(name, _inplace(fn, name))


_register_inplace()
