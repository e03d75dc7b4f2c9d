"""Strided views (issue 16): as_strided, diagonal, and the names that are views or aliases
of existing ones (swapaxes, moveaxis, ravel, adjoint, slice_inverse).

`as_strided` is the one view whose geometry is arbitrary: the backends' `as_strided`
(element strides and an offset from the tensor's first element, bounds-checked against
the tensor's allocation) makes it, and `diagonal` is an `as_strided` whose strides come
from the input's.  The gradient of such a view scatters into the positions of the memory
the view reads and gathers back at the input's own positions, so overlapping views (a
stride of 0) sum their gradients, as in PyTorch.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..backend import backend_of
from ..tensor import register_method
from ._opmeta import no_flops
from ._util import Tensor, _wrap_dim, apply, ensure_tensor
from .shape import movedim, permute, reshape, transpose


def _positions(shape: tuple, strides: tuple, offset: int, like: Tensor) -> Tensor:
    """Element offsets (int64, on like's device) of every element of a (shape, strides)
    view that starts `offset` elements after a reference element."""
    from ..creation import arange
    from .. import dtypes as _dt

    pos = like.new_full((), offset, dtype=_dt.int64)
    for k, (n, s) in enumerate(zip(shape, strides)):
        ax = arange(n, dtype=_dt.int64, device=like.device) * s
        pos = pos + ax.reshape((n,) + (1,) * (len(shape) - k - 1))
    return pos.expand(*shape) if pos.shape != tuple(shape) else pos


class AsStrided(Function):
    """x's memory seen with (size, stride) from `offset` elements after x's first one.
    `layout` is x's element strides when the view was made: a replay on a tensor of
    another layout (a gradient, when autograd replays a chain of views) first copies it
    into that layout, so the view reads the same elements."""
    autocast = None
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, size, stride, offset, layout):
        ctx.xshape, ctx.layout = x.shape, layout
        ctx.size, ctx.stride, ctx.offset = size, stride, offset
        if x.size and tuple(s // x.itemsize for s in x.strides) != layout:
            lo, hi = _extent(x.shape, layout)
            buf = B.full((hi - lo + 1,), 0, x.dtype)
            v = B.as_strided(buf, x.shape, layout, -lo)
            B.copy_(v, x)
            x = v
        try:
            return B.as_strided(x, size, stride, offset)
        except ValueError as e:
            raise RuntimeError(f"as_strided: {e}") from None

    def backward(self, g):
        return _strided_grad(g, self.xshape, self.layout, self.size, self.stride, self.offset)


def _extent(shape: tuple, strides: tuple) -> tuple:
    """(lowest, highest) element offset a (shape, strides) layout reaches (non-empty)."""
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    return lo, hi


def _as_strided(x: Tensor, size: tuple, stride: tuple, offset: int) -> Tensor:
    return apply(AsStrided, (x,), {"size": size, "stride": stride, "offset": offset,
                                   "layout": tuple(x.stride())})


def _strided_grad(g: Tensor, xshape, xstride, size, stride, offset) -> Tensor:
    # the view's gradient summed into a buffer over the memory both geometries touch,
    # then read at the input's positions (tinyfw ops: differentiable again)
    from ..creation import zeros
    from .index import scatter_add

    if 0 in xshape:
        return g.new_zeros(xshape)
    px = _positions(xshape, xstride, 0, g)
    if 0 in size:
        return g.new_zeros(xshape)
    po = _positions(size, stride, offset, g)
    lo, hi = _extent(xshape, xstride)
    lo = min(lo, offset)
    hi = max(hi, offset + sum((n - 1) * s for n, s in zip(size, stride)))
    buf = zeros(hi - lo + 1, dtype=g.dtype, device=g.device)
    buf = scatter_add(buf, 0, (po - lo).reshape(-1), g.reshape(-1))
    return buf[(px - lo).reshape(-1)].reshape(xshape)


def _offset_of(x: Tensor) -> int:
    return int(backend_of(x._data).storage_offset(x._data))


def storage_offset(x: Tensor) -> int:
    """Elements from the start of x's memory to its first element."""
    return _offset_of(x)


def _geometry_arg(v) -> tuple:
    return tuple(int(s) for s in ((v,) if isinstance(v, int) else v))


def as_strided(x, size, stride, storage_offset: int | None = None) -> Tensor:
    """A view of x's memory with the given size and (element) strides, starting at
    `storage_offset` elements into it (default: x's own offset)."""
    x = ensure_tensor(x, "as_strided")
    size, stride = _geometry_arg(size), _geometry_arg(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: mismatch in length of strides {list(stride)} and "
                           f"shape {list(size)}")
    if any(s < 0 for s in size):
        raise RuntimeError(f"as_strided: negative size in {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: negative strides are not supported, got {list(stride)}")
    if storage_offset is not None and storage_offset < 0:
        raise RuntimeError(f"as_strided: storage_offset {storage_offset} is negative")
    rel = 0 if storage_offset is None else int(storage_offset) - _offset_of(x)
    return _as_strided(x, size, stride, rel)


def as_strided_(x: Tensor, size, stride, storage_offset: int | None = None) -> Tensor:
    """In place: x's geometry becomes as_strided(x, ...)'s (same memory; views taken of
    x before keep theirs).  Not for tensors that record gradients."""
    from ..autograd.function import GradMode

    if GradMode.enabled and x.requires_grad:
        raise RuntimeError("as_strided_: changing the geometry of a tensor that requires grad "
                           "in place is not supported; use as_strided (a view)")
    x._data = as_strided(x.detach(), size, stride, storage_offset)._data
    return x


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The `offset`-th diagonal of the (dim1, dim2) planes, as the last dim (a view)."""
    x = ensure_tensor(x, "diagonal")
    if x.ndim < 2:
        raise RuntimeError(f"diagonal: needs at least 2 dims, got shape {tuple(x.shape)}")
    d1, d2 = _wrap_dim(dim1, x.ndim, "diagonal"), _wrap_dim(dim2, x.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal: dim1 and dim2 cannot be the same dim ({dim1}, {dim2})")
    return apply(Diagonal, (x,), {"offset": int(offset), "dim1": d1, "dim2": d2})


class Diagonal(Function):
    """The diagonal view; its geometry comes from the input's own strides, so it reads
    the same elements of a tensor of any layout."""
    autocast = None
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, offset, dim1, dim2):
        ctx.xshape, ctx.offset, ctx.dim1, ctx.dim2 = x.shape, offset, dim1, dim2
        strides = tuple(s // x.itemsize for s in x.strides)
        return B.as_strided(x, *diagonal_geometry(x.shape, strides, offset, dim1, dim2))

    def backward(self, g):
        from .index_scatter import diagonal_scatter

        return diagonal_scatter(g.new_zeros(self.xshape), g, self.offset, self.dim1, self.dim2)


def diagonal_geometry(shape: tuple, strides: tuple, offset: int, d1: int, d2: int):
    """(size, strides, start) of the diagonal view of a (shape, strides) layout."""
    n1, n2 = shape[d1], shape[d2]
    if offset >= 0:
        n = max(0, min(n1, n2 - offset))
        start = offset * strides[d2]
    else:
        n = max(0, min(n1 + offset, n2))
        start = -offset * strides[d1]
    if n == 0:
        start = 0
    keep = [k for k in range(len(shape)) if k not in (d1, d2)]
    return (tuple(shape[k] for k in keep) + (n,), tuple(strides[k] for k in keep)
            + (strides[d1] + strides[d2],), start)


def swapaxes(x, axis0: int, axis1: int) -> Tensor:
    """transpose(x, axis0, axis1) (a view)."""
    return transpose(ensure_tensor(x, "swapaxes"), axis0, axis1)


def swapdims(x, dim0: int, dim1: int) -> Tensor:
    """transpose(x, dim0, dim1) (a view)."""
    return transpose(ensure_tensor(x, "swapdims"), dim0, dim1)


def moveaxis(x, source, destination) -> Tensor:
    """Move dims `source` to positions `destination` (ints or sequences; a view)."""
    x = ensure_tensor(x, "moveaxis")
    if isinstance(source, int) and isinstance(destination, int):
        return movedim(x, source, destination)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"moveaxis: invalid source or destination dims: source ({list(src)}) "
                           f"and destination ({list(dst)}) must have the same number of elements")
    src = tuple(_wrap_dim(d, x.ndim, "moveaxis") for d in src)
    dst = tuple(_wrap_dim(d, x.ndim, "moveaxis") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"moveaxis: repeated dim in source {list(src)} or destination "
                           f"{list(dst)}")
    order = [None] * x.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(k for k in range(x.ndim) if k not in src)
    order = [next(rest) if o is None else o for o in order]
    return permute(x, *order)


def ravel(x) -> Tensor:
    """x flattened to 1-d: a view when the strides allow, else a copy."""
    return reshape(ensure_tensor(x, "ravel"), -1)


def adjoint(x) -> Tensor:
    """The conjugate transpose of the last two dims (real dtypes: the transpose; a view)."""
    x = ensure_tensor(x, "adjoint")
    if x.ndim < 2:
        raise RuntimeError(f"adjoint: only supported on matrices or batches of matrices, got "
                           f"a {x.ndim}-D tensor")
    return transpose(x, -2, -1)


def slice_inverse(x, src, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """The inverse of a slice (PyTorch's functionalization op): a view of x's memory with
    src's size, strides and offset (x is the slice, src the tensor it was cut from)."""
    x, src = ensure_tensor(x, "slice_inverse"), ensure_tensor(src, "slice_inverse")
    return as_strided(x, src.shape, src.stride(), storage_offset(src))


_METHODS = {
    "as_strided": as_strided, "as_strided_": as_strided_, "diagonal": diagonal,
    "swapaxes": swapaxes, "swapdims": swapdims, "moveaxis": moveaxis, "ravel": ravel,
    "adjoint": adjoint, "storage_offset": storage_offset, "slice_inverse": slice_inverse,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
