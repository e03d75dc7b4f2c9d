"""The *_scatter ops (issue 16): a copy of x with `src` written into one of its views —
select_scatter, slice_scatter, diagonal_scatter, as_strided_scatter (PyTorch's
functional forms of writing through select, slicing, diagonal and as_strided).

One Function, `ViewScatter`, does all four: the view is a basic index (select, slice) or
a strided geometry over the row-major copy (diagonal, as_strided).  Its gradient is the
same op with zeros for x's part and the view of the gradient for src's, so second
derivatives work.
"""
from __future__ import annotations

from ..autograd.function import Function
from ._opmeta import no_flops
from ._util import Tensor, _wrap_dim, apply, ensure_tensor
from .shape import _check_basic, slice_view
from .shape_views import _as_strided, diagonal_geometry


def _row_major(shape: tuple) -> tuple:
    out, s = [], 1
    for n in reversed(shape):
        out.append(s)
        s *= max(n, 1)
    return tuple(reversed(out))


class ViewScatter(Function):
    """A copy of x with src written into the view `index` (basic index) or `strided`
    ((size, stride, offset) over the row-major copy)."""
    autocast = None
    flops = no_flops
    fresh_output = True

    @staticmethod
    def forward(ctx, B, x, src, index=None, strided=None):
        ctx.index, ctx.strided, ctx.xshape = index, strided, x.shape
        out = B.empty(x.shape, x.dtype)
        B.copy_(out, x)
        v = B.slice_view(out, index) if strided is None else B.as_strided(out, *strided)
        B.copy_(v, src)
        return out

    def backward(self, g):
        gx = gsrc = None
        attrs = {"index": self.index, "strided": self.strided}
        if self.next[0] is not None:
            zero = g.new_zeros(())
            gx = apply(ViewScatter, (g, zero), attrs)
        if self.next[1] is not None:
            gsrc = _view_of(g.contiguous(), self.index, self.strided).contiguous()
        return gx, gsrc


def _view_of(t: Tensor, index, strided) -> Tensor:
    if strided is None:
        return slice_view(t, index)
    size, stride, offset = strided
    return _as_strided(t, size, stride, offset)


def _scatter_into(x: Tensor, src, op: str, index=None, strided=None) -> Tensor:
    src = ensure_tensor(src, op)
    want = tuple(strided[0]) if strided is not None else tuple(
        slice_view(x.detach(), index).shape)
    if tuple(src.shape) != want:
        raise RuntimeError(f"{op}: expected src to have a size equal to the slice of self. "
                           f"src size = {list(src.shape)}, slice size = {list(want)}")
    if src.dtype is not x.dtype:
        src = src.to(x.dtype)
    return apply(ViewScatter, (x, src), {"index": index, "strided": strided})


def select_scatter(x, src, dim: int, index: int) -> Tensor:
    """A copy of x with src written at position `index` of `dim` (src has x's shape
    without `dim`)."""
    x = ensure_tensor(x, "select_scatter")
    d = _wrap_dim(dim, x.ndim, "select_scatter")
    idx = _check_basic(x, (slice(None),) * d + (int(index),))
    return _scatter_into(x, src, "select_scatter", index=idx)


def slice_scatter(x, src, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """A copy of x with src written into x[..., start:end:step, ...] along `dim`."""
    x = ensure_tensor(x, "slice_scatter")
    d = _wrap_dim(dim, x.ndim, "slice_scatter")
    if step is None:
        step = 1
    if step <= 0:
        raise RuntimeError(f"slice_scatter: slice step must be positive, got {step}")
    idx = _check_basic(x, (slice(None),) * d + (slice(start, end, step),))
    return _scatter_into(x, src, "slice_scatter", index=idx)


def diagonal_scatter(x, src, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """A copy of x with src written on the `offset`-th diagonal of the (dim1, dim2)
    planes (src has the shape of x.diagonal(offset, dim1, dim2))."""
    x = ensure_tensor(x, "diagonal_scatter")
    if x.ndim < 2:
        raise RuntimeError(f"diagonal_scatter: needs at least 2 dims, got shape {tuple(x.shape)}")
    d1, d2 = _wrap_dim(dim1, x.ndim, "diagonal_scatter"), _wrap_dim(dim2, x.ndim, "diagonal_scatter")
    if d1 == d2:
        raise RuntimeError(f"diagonal_scatter: dim1 and dim2 cannot be the same ({dim1}, {dim2})")
    geo = diagonal_geometry(x.shape, _row_major(x.shape), int(offset), d1, d2)
    return _scatter_into(x, src, "diagonal_scatter", strided=geo)


def as_strided_scatter(x, src, size, stride, storage_offset: int | None = None) -> Tensor:
    """A copy of x (row-major) with src written into its as_strided(size, stride,
    storage_offset) view."""
    x = ensure_tensor(x, "as_strided_scatter")
    size = tuple(int(s) for s in ((size,) if isinstance(size, int) else size))
    stride = tuple(int(s) for s in ((stride,) if isinstance(stride, int) else stride))
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided_scatter: mismatch in length of strides {list(stride)} "
                           f"and shape {list(size)}")
    if any(s < 0 for s in stride) or any(s < 0 for s in size):
        raise RuntimeError(f"as_strided_scatter: negative sizes or strides ({list(size)}, "
                           f"{list(stride)})")
    off = int(storage_offset or 0)
    n = x.numel()
    if 0 not in size and (off < 0 or off + sum((a - 1) * b for a, b in zip(size, stride)) >= n):
        raise RuntimeError(f"as_strided_scatter: sizes {list(size)}, strides {list(stride)} and "
                           f"storage offset {off} are out of bounds for a tensor of {n} elements")
    return _scatter_into(x, src, "as_strided_scatter", strided=(size, stride, off))


_METHODS = {"select_scatter": select_scatter, "slice_scatter": slice_scatter,
            "diagonal_scatter": diagonal_scatter, "as_strided_scatter": as_strided_scatter}
for _name, _fn in _METHODS.items():
    from ..tensor import register_method

    register_method(_name, _fn)
