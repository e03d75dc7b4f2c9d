"""Shape ops of issue 16 composed from existing ops (so gradients, every backend and the
tracer come with them): diag/diag_embed/diagflat, roll, rot90, tile, repeat_interleave,
kron, tensor_split/hsplit/vsplit/dsplit/split_with_sizes, fliplr/flipud, narrow_copy,
and the function forms of detach/detach_/fill_/zero_ plus resize_as_.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..tensor import register_method
from ._util import Tensor, _wrap_dim, ensure_tensor
from .index import cat, flip, index_select
from .shape import narrow, reshape, slice_view, split, transpose


# -- diagonals ------------------------------------------------------------------------------
def diag_embed(x, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (in dims dim1, dim2 of the result) with x's last dim on their
    `offset`-th diagonal, zeros elsewhere."""
    from .index_scatter import diagonal_scatter

    x = ensure_tensor(x, "diag_embed")
    if x.ndim == 0:
        raise RuntimeError("diag_embed: needs at least 1 dim, got a 0-d tensor")
    nd = x.ndim + 1
    d1, d2 = _wrap_dim(dim1, nd, "diag_embed"), _wrap_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical ({dim1}, {dim2})")
    n = x.shape[-1] + abs(int(offset))
    rest = iter(x.shape[:-1])
    shape = tuple(n if k in (d1, d2) else next(rest) for k in range(nd))
    return diagonal_scatter(x.new_zeros(shape), x, offset, d1, d2)


def diag(x, diagonal: int = 0) -> Tensor:
    """1-d x: the square matrix with x on its `diagonal`-th diagonal; 2-d x: a copy of
    that diagonal."""
    x = ensure_tensor(x, "diag")
    if x.ndim == 1:
        return diag_embed(x, diagonal, 0, 1)
    if x.ndim == 2:
        from .shape_views import diagonal as _diagonal

        return _diagonal(x, diagonal).clone()
    raise RuntimeError(f"diag: expected a 1-d or 2-d tensor, got shape {tuple(x.shape)}")


def diagflat(x, offset: int = 0) -> Tensor:
    """The square matrix with x, flattened, on its `offset`-th diagonal."""
    return diag_embed(reshape(ensure_tensor(x, "diagflat"), -1), offset, 0, 1)


# -- rearrangements ----------------------------------------------------------------------
def roll(x, shifts, dims=None) -> Tensor:
    """Elements shifted (circularly) by `shifts` along `dims` (None: the flattened x)."""
    x = ensure_tensor(x, "roll")
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts {list(shifts)} need dims of the same length")
        return reshape(roll(reshape(x, -1), shifts, 0), x.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts ({len(shifts)}) and dims ({len(dims)}) must have the "
                           "same length")
    out = x
    for s, d in zip(shifts, dims):
        d = _wrap_dim(d, x.ndim, "roll")
        n = x.shape[d]
        k = s % n if n else 0
        if k:
            out = cat([narrow(out, d, n - k, k), narrow(out, d, 0, n - k)], d)
    return out if out is not x else x.clone()


def rot90(x, k: int = 1, dims=(0, 1)) -> Tensor:
    """x rotated by 90 degrees k times in the plane of `dims` (from dims[0] towards
    dims[1])."""
    x = ensure_tensor(x, "rot90")
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected 2 dims, got {len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"rot90: expected at least 2 dims, got {x.ndim}")
    d0, d1 = (_wrap_dim(d, x.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: the two dims must differ, got {list(dims)}")
    k %= 4
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return transpose(flip(x, d0), d0, d1)
    return x.clone()


def fliplr(x) -> Tensor:
    """x reversed along dim 1 (at least 2 dims)."""
    x = ensure_tensor(x, "fliplr")
    if x.ndim < 2:
        raise RuntimeError(f"fliplr: input must be >= 2-d, got shape {tuple(x.shape)}")
    return flip(x, 1)


def flipud(x) -> Tensor:
    """x reversed along dim 0 (at least 1 dim)."""
    x = ensure_tensor(x, "flipud")
    if x.ndim < 1:
        raise RuntimeError("flipud: input must be >= 1-d, got a 0-d tensor")
    return flip(x, 0)


def tile(x, dims) -> Tensor:
    """x repeated `dims` times per dim; fewer dims than x's are padded with 1s in front,
    more add leading dims (numpy's tile)."""
    x = ensure_tensor(x, "tile")
    dims = (dims,) if isinstance(dims, int) else tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise RuntimeError(f"tile: repeats {list(dims)} must be non-negative")
    dims = (1,) * (x.ndim - len(dims)) + dims
    return x.repeat(*dims)


def repeat_interleave(x, repeats=None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Each element repeated `repeats` times (an int, or a tensor with one count per
    element of `dim`) along `dim` (None: the flattened x).  repeat_interleave(counts)
    alone gives arange(len(counts)) repeated."""
    from ..creation import arange, tensor

    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = ensure_tensor(x, "repeat_interleave")
        if counts.ndim > 1 or counts.dtype.is_floating_point:
            raise RuntimeError("repeat_interleave: repeats must be a 0-d or 1-d integer tensor")
        return repeat_interleave(arange(counts.numel(), device=counts.device),
                                 counts.reshape(-1), 0, output_size=output_size)
    x = ensure_tensor(x, "repeat_interleave")
    if dim is None:
        x, dim = reshape(x, -1), 0
    d = _wrap_dim(dim, max(x.ndim, 1), "repeat_interleave")
    if x.ndim == 0:
        x = reshape(x, 1)
    n = x.shape[d]
    if isinstance(repeats, Tensor):
        if repeats.dtype.is_floating_point or repeats.dtype is _dt.bool_ or repeats.ndim > 1:
            raise RuntimeError("repeat_interleave: repeats must be a 0-d or 1-d integer tensor, "
                               f"got {repeats.dtype.name} of shape {tuple(repeats.shape)}")
        counts = [int(c) for c in repeats.reshape(-1).tolist()]
        if len(counts) == 1:
            counts = counts * n
        elif len(counts) != n:
            raise RuntimeError(f"repeat_interleave: repeats must have the same size as input "
                               f"along dim {d}: {len(counts)} vs {n}")
    else:
        counts = [int(repeats)] * n
    if any(c < 0 for c in counts):
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    total = sum(counts)
    if output_size is not None and output_size != total:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"sum of repeats {total}")
    idx = tensor([i for i, c in enumerate(counts) for _ in range(c)], dtype=_dt.int64,
                 device=x.device)
    return index_select(x, d, idx)


def kron(a, b) -> Tensor:
    """The Kronecker product: block (i, j, ...) of the result is a[i, j, ...] * b."""
    a, b = ensure_tensor(a, "kron"), ensure_tensor(b, "kron")
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    ia = tuple(v for s in sa for v in (s, 1))
    ib = tuple(v for s in sb for v in (1, s))
    prod = reshape(a, ia) * reshape(b, ib)
    return reshape(prod, tuple(p * q for p, q in zip(sa, sb)))


# -- splits ---------------------------------------------------------------------------------
def _pieces(x: Tensor, d: int, bounds: list) -> tuple:
    # piece i is x[bounds[i-1]:bounds[i]] along d with Python's slice rules (PyTorch's:
    # out-of-range bounds clamp, a bound below the previous one gives an empty piece)
    ends = [0] + bounds + [None]
    return tuple(slice_view(x, (slice(None),) * d + (slice(a, b),))
                 for a, b in zip(ends[:-1], ends[1:]))


def tensor_split(x, indices_or_sections, dim: int = 0) -> tuple:
    """Views of x along `dim`: `sections` nearly equal pieces (the first n % sections one
    longer), or the pieces between the given indices."""
    x = ensure_tensor(x, "tensor_split")
    if x.ndim == 0:
        raise RuntimeError("tensor_split: expected at least a 1-dimensional tensor")
    d = _wrap_dim(dim, x.ndim, "tensor_split")
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype.is_floating_point or ios.dtype is _dt.bool_ or ios.ndim > 1:
            raise RuntimeError("tensor_split: tensor indices_or_sections must be a 0-d or 1-d "
                               f"integer tensor, got {ios.dtype.name} of shape {tuple(ios.shape)}")
        ios = int(ios.item()) if ios.ndim == 0 else [int(v) for v in ios.tolist()]
    n = x.shape[d]
    if isinstance(ios, int):
        if ios <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {ios}")
        q, r = divmod(n, ios)
        bounds, at = [], 0
        for i in range(ios - 1):
            at += q + (1 if i < r else 0)
            bounds.append(at)
        return _pieces(x, d, bounds)
    return _pieces(x, d, [int(i) for i in ios])


def _split_dim(x, ios, d: int, op: str) -> tuple:
    if isinstance(ios, int):
        n = x.shape[d]
        if ios == 0 or n % ios:
            raise RuntimeError(f"{op}: attempted to split along dimension {d}, but the size of "
                               f"the dimension {n} is not divisible by the split_size {ios}!")
    return tensor_split(x, ios, d)


def hsplit(x, indices_or_sections) -> tuple:
    """tensor_split along dim 1 (dim 0 for 1-d x); sections must divide the dim."""
    x = ensure_tensor(x, "hsplit")
    if x.ndim < 1:
        raise RuntimeError("hsplit: requires a tensor with at least 1 dimension, got 0")
    return _split_dim(x, indices_or_sections, 0 if x.ndim == 1 else 1, "hsplit")


def vsplit(x, indices_or_sections) -> tuple:
    """tensor_split along dim 0 of a tensor with at least 2 dims."""
    x = ensure_tensor(x, "vsplit")
    if x.ndim < 2:
        raise RuntimeError(f"vsplit: requires a tensor with at least 2 dimensions, got {x.ndim}")
    return _split_dim(x, indices_or_sections, 0, "vsplit")


def dsplit(x, indices_or_sections) -> tuple:
    """tensor_split along dim 2 of a tensor with at least 3 dims."""
    x = ensure_tensor(x, "dsplit")
    if x.ndim < 3:
        raise RuntimeError(f"dsplit: requires a tensor with at least 3 dimensions, got {x.ndim}")
    return _split_dim(x, indices_or_sections, 2, "dsplit")


def split_with_sizes(x, split_sizes, dim: int = 0) -> tuple:
    """Views of consecutive pieces of the given sizes along `dim` (they must sum to it)."""
    x = ensure_tensor(x, "split_with_sizes")
    sizes = [int(s) for s in split_sizes]
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes: split sizes {sizes} must be non-negative")
    return split(x, sizes, dim)


def narrow_copy(x, dim: int, start: int, length: int) -> Tensor:
    """narrow(x, dim, start, length), copied."""
    return narrow(ensure_tensor(x, "narrow_copy"), dim, start, length).clone()


# -- function forms of Tensor methods --------------------------------------------------
def detach(x: Tensor) -> Tensor:
    """x without history (shares memory)."""
    return ensure_tensor(x, "detach").detach()


def detach_(x: Tensor) -> Tensor:
    """Drop x's history in place."""
    return x.detach_()


def fill_(x: Tensor, value) -> Tensor:
    """Set every element of x to `value` (in place)."""
    return x.fill_(value)


def zero_(x: Tensor) -> Tensor:
    """Set every element of x to 0 (in place)."""
    return x.zero_()


def resize_as_(x: Tensor, other: Tensor) -> Tensor:
    """Give x other's shape in place: the first min(old, new) elements (row-major) keep
    their values, new ones are uninitialised (PyTorch's storage rule)."""
    from ..autograd.function import no_grad
    from ..creation import empty

    if x.requires_grad:
        raise RuntimeError("resize_as_: cannot resize a tensor that requires grad")
    shape = tuple(other.shape)
    if shape == tuple(x.shape):
        return x
    with no_grad():
        new = empty(shape, dtype=x.dtype, device=x.device)
        k = min(math.prod(shape), x.numel())
        if k:
            reshape(new, -1)[:k] = reshape(x, -1)[:k]
    x._data = new._data
    x._view = None
    x._version[0] += 1
    return x


_METHODS = {
    "diag": diag, "diag_embed": diag_embed, "diagflat": diagflat, "roll": roll,
    "rot90": rot90, "fliplr": fliplr, "flipud": flipud, "tile": tile,
    "repeat_interleave": repeat_interleave, "kron": kron, "tensor_split": tensor_split,
    "hsplit": hsplit, "vsplit": vsplit, "dsplit": dsplit, "split_with_sizes": split_with_sizes,
    "narrow_copy": narrow_copy, "resize_as_": resize_as_,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
