"""Views: ops that change shape, strides and offset but never copy data.

reshape/view, flatten, permute/transpose, expand, squeeze/unsqueeze, basic slicing,
narrow/select/split/chunk/unbind.  A view shares its base's version counter, so an
in-place write through either is seen by the autograd checks of both.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..backend.host import is_integer
from ..tensor import register_method
from ._opmeta import no_flops
from ._util import Tensor, _wrap_dim, apply, ensure_tensor


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer_shape(shape: tuple, numel: int, op: str, src: tuple) -> tuple:
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise RuntimeError(f"{op}: invalid shape {shape}: at most one -1 and no other negatives")
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of shape {src} "
                               f"({numel} elements)")
        shape = shape[:unknown[0]] + (numel // known,) + shape[unknown[0] + 1:]
    elif known != numel:
        raise RuntimeError(f"{op}: shape {shape} is invalid for input of shape {src} "
                           f"({numel} elements)")
    return shape


# -- ONNX translations (see Function.onnx) ------------------------------------------------------
def _onnx_with_shape(op: str) -> staticmethod:
    # Reshape / Expand: the target shape is the second input
    def to_onnx(b, n, ins: list, out: str) -> None:
        b.add(op, [ins[0], b.ints(n.attrs["shape"])], [out])

    return staticmethod(to_onnx)


def _permute_onnx(b, n, ins: list, out: str) -> None:
    b.add("Transpose", ins, [out], perm=list(n.attrs["dims"]))


def _slice_onnx(b, n, ins: list, out: str) -> None:
    b.basic_index(ins[0], out, tuple(n.attrs["index"]), tuple(n.inputs[0].shape))


class View(Function):
    autocast = None
    onnx = _onnx_with_shape("Reshape")
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, shape):
        ctx.shape = x.shape
        v = B.view(x, shape)
        if v is None:
            raise _NotAView
        return v

    def backward(self, g):
        return g.reshape(self.shape)


class ReshapeCopy(Function):
    autocast = None
    onnx = _onnx_with_shape("Reshape")
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, shape):
        ctx.shape = x.shape
        return B.view(B.contiguous(x), shape)

    def backward(self, g):
        return g.reshape(self.shape)


class _NotAView(Exception):
    """Raised by View's forward when the strides do not allow the new shape."""


def view(x, *shape) -> Tensor:
    """The same data seen with a new shape; raises if the strides do not allow a view."""
    shape = _infer_shape(_shape_arg(shape), x._data.size, "view", x.shape)
    try:
        return apply(View, (x,), {"shape": shape})
    except _NotAView:
        raise RuntimeError(f"view: shape {shape} is not compatible with the strides of the "
                           f"input (shape {tuple(x.shape)}, strides {x.stride()}); use "
                           ".reshape(...) or .contiguous().view(...)") from None


def reshape(x, *shape) -> Tensor:
    """A tensor with the same data and a new shape: a view when possible, else a copy."""
    x = ensure_tensor(x, "reshape")
    shape = _infer_shape(_shape_arg(shape), x._data.size, "reshape", x.shape)
    try:
        return apply(View, (x,), {"shape": shape})
    except _NotAView:
        return apply(ReshapeCopy, (x,), {"shape": shape})


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if x.ndim == 0:
        return x.reshape(1)
    s = _wrap_dim(start_dim, x.ndim, "flatten")
    e = _wrap_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return reshape(x, shape)


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split dim `dim` into `sizes`."""
    d = _wrap_dim(dim, x.ndim, "unflatten")
    sizes = _infer_shape(tuple(sizes), x.shape[d], "unflatten", x.shape)
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])


class Permute(Function):
    autocast = None
    onnx = staticmethod(_permute_onnx)
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, dims):
        ctx.dims = dims
        return B.permute(x, dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.permute(*inverse)


def permute(x, *dims) -> Tensor:
    """Reorder the dims (a view)."""
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(f"permute: got {len(dims)} dims {dims} for a tensor with {x.ndim} "
                           f"dims (shape {tuple(x.shape)})")
    dims = tuple(_wrap_dim(d, x.ndim, "permute") for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"permute: dims {dims} repeat a dimension")
    return apply(Permute, (x,), {"dims": dims})


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (a view)."""
    n = x.ndim
    if n < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = _wrap_dim(dim0, n, "transpose"), _wrap_dim(dim1, n, "transpose")
    dims = list(range(n))
    dims[d0], dims[d1] = d1, d0
    return apply(Permute, (x,), {"dims": tuple(dims)})


def t(x) -> Tensor:
    """Transpose of a tensor with at most 2 dims."""
    if x.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dims, got shape {tuple(x.shape)}; "
                           "use transpose(dim0, dim1)")
    return transpose(x, 0, -1) if x.ndim == 2 else x


def movedim(x, source: int, destination: int) -> Tensor:
    """Move dim `source` to position `destination` (a view)."""
    s, d = _wrap_dim(source, x.ndim, "movedim"), _wrap_dim(destination, x.ndim, "movedim")
    order = [i for i in range(x.ndim) if i != s]
    order.insert(d, s)
    return permute(x, *order)


class Expand(Function):
    autocast = None
    onnx = _onnx_with_shape("Expand")
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, shape):
        ctx.shape = x.shape
        return B.expand(x, shape)

    def backward(self, g):
        from ._util import unbroadcast

        return unbroadcast(g, self.shape)


def expand(x, *sizes) -> Tensor:
    """Broadcast to a larger shape without copying; -1 keeps a dim's size."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: target {sizes} has fewer dims than the input "
                           f"{tuple(x.shape)}")
    lead = len(sizes) - x.ndim
    shape = []
    for i, s in enumerate(sizes):
        cur = x.shape[i - lead] if i >= lead else None
        if s == -1:
            if cur is None:
                raise RuntimeError(f"expand: -1 is not allowed for the new leading dim {i}")
            s = cur
        elif cur is not None and cur != 1 and cur != s:
            raise RuntimeError(f"expand: the input's size {cur} at dim {i - lead} cannot be "
                               f"expanded to {s} (input {tuple(x.shape)}, target {sizes})")
        shape.append(s)
    shape = tuple(shape)
    if shape == x._data.shape:
        return x
    return apply(Expand, (x,), {"shape": shape})


def broadcast_to(x, shape) -> Tensor:
    """Broadcast to `shape` (a view)."""
    return expand(ensure_tensor(x, "broadcast_to"), *tuple(shape))


def expand_as(x, other: Tensor) -> Tensor:
    """expand(x, other.shape)."""
    return expand(x, *other.shape)


def squeeze(x, dim=None) -> Tensor:
    """Drop dims of size 1 (all, or those named by `dim`)."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_wrap_dim(d, x.ndim, "squeeze") for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return reshape(x, shape) if shape != x.shape else x


def unsqueeze(x, dim: int) -> Tensor:
    """Insert a dim of size 1 at `dim`."""
    d = _wrap_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


# -- basic slicing ----------------------------------------------------------------------
class Slice(Function):
    autocast = None
    onnx = staticmethod(_slice_onnx)
    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, x, index):
        ctx.shape, ctx.index = x.shape, index
        return B.slice_view(x, index)

    def backward(self, g):
        return apply(SliceGrad, (g,), {"shape": self.shape, "index": self.index})


class SliceGrad(Function):
    """Scatter a slice's gradient into zeros of the sliced tensor's shape."""
    autocast = None

    flops = no_flops

    @staticmethod
    def forward(ctx, B, g, shape, index):
        ctx.index = index
        out = B.full(shape, 0, g.dtype)
        B.copy_(B.slice_view(out, index), g)
        return out

    def backward(self, gg):
        return apply(Slice, (gg,), {"index": self.index})


def _is_basic(index) -> bool:
    if not isinstance(index, tuple):
        index = (index,)
    for i in index:
        if i is None or i is Ellipsis or isinstance(i, slice):
            continue
        if is_integer(i):
            continue
        return False
    return True


def _check_basic(x: Tensor, index) -> tuple:
    idx = index if isinstance(index, tuple) else (index,)
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if n_real > x.ndim:
        raise IndexError(f"index {index!r}: too many indices for a tensor of shape "
                         f"{tuple(x.shape)}")
    dim = 0
    for i in idx:
        if i is Ellipsis:
            dim += x.ndim - n_real
            continue
        if i is None:
            continue
        if isinstance(i, slice):
            if i.step is not None and i.step <= 0:
                raise ValueError(f"index {index!r}: slice steps must be positive (got "
                                 f"{i.step}); use flip() to reverse")
        else:
            size = x.shape[dim]
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dim {dim} with size {size} "
                                 f"(tensor shape {tuple(x.shape)})")
        dim += 1
    return idx


def slice_view(x: Tensor, index) -> Tensor:
    """Basic indexing (ints, slices with positive steps, None, ...): a view."""
    return apply(Slice, (x,), {"index": _check_basic(x, index)})


def narrow(x, dim: int, start: int, length: int) -> Tensor:
    """x restricted to [start, start + length) along `dim` (a view)."""
    d = _wrap_dim(dim, x.ndim, "narrow")
    size = x.shape[d]
    if start < 0:
        start += size
    if not (0 <= start <= size and 0 <= length and start + length <= size):
        raise IndexError(f"narrow: range [{start}, {start + length}) is outside dim {d} of "
                         f"size {size}")
    return slice_view(x, (slice(None),) * d + (slice(start, start + length),))


def select(x, dim: int, index: int) -> Tensor:
    """x with `dim` removed at position `index` (a view)."""
    d = _wrap_dim(dim, x.ndim, "select")
    return slice_view(x, (slice(None),) * d + (index,))


def split(x, split_size_or_sections, dim: int = 0) -> tuple:
    """Views of consecutive pieces along `dim`: equal pieces of a size, or given sizes."""
    d = _wrap_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and n > 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {d} has "
                               f"size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` views of (nearly) equal size along `dim`."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[_wrap_dim(dim, x.ndim, "chunk")]
    return split(x, max(1, -(-n // chunks)), dim)


def unbind(x, dim: int = 0) -> tuple:
    """All slices along `dim`, with that dim removed (views)."""
    d = _wrap_dim(dim, x.ndim, "unbind")
    return tuple(select(x, d, i) for i in range(x.shape[d]))


class Contiguous(Function):
    autocast = None
    onnx = "Identity"
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x):
        return B.contiguous(x)

    def backward(self, g):
        return g


def contiguous(x) -> Tensor:
    """x itself when already row-major, else a row-major copy."""
    if x.is_contiguous():
        return x
    return apply(Contiguous, (x,), {})


_METHODS = {
    "view": view, "reshape": reshape, "flatten": flatten, "unflatten": unflatten,
    "permute": permute, "transpose": transpose, "swapaxes": transpose, "t": t,
    "movedim": movedim, "expand": expand, "broadcast_to": broadcast_to,
    "expand_as": expand_as, "squeeze": squeeze, "unsqueeze": unsqueeze, "narrow": narrow,
    "select": select, "split": split, "chunk": chunk, "unbind": unbind,
    "contiguous": contiguous,
    "view_as": lambda x, other: view(x, other.shape),
    "reshape_as": lambda x, other: reshape(x, other.shape),
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
