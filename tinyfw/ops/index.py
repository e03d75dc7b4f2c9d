"""Ops that copy: cat/stack, pad, flip, repeat, gather/scatter, advanced indexing,
masked_fill, triangles, sorting."""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..backend import backend_of, host
from ..tensor import register_method
from ._opmeta import no_flops
from ._util import Tensor, _wrap_dim, apply, ensure_tensor, promote, reshape_array, unbroadcast
from .shape import _check_basic, _is_basic, slice_view


def _cat_onnx(b, n, ins: list, out: str) -> None:
    b.add("Concat", ins, [out], axis=int(n.attrs["dim"]))


class Cat(Function):
    autocast = "promote"
    onnx = staticmethod(_cat_onnx)
    flops = no_flops

    @staticmethod
    def forward(ctx, B, *xs, dim):
        ctx.dim, ctx.sizes = dim, [x.shape[dim] for x in xs]
        return B.cat(list(xs), dim)

    def backward(self, g):
        return tuple(g.split(self.sizes, self.dim))


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dim (dtypes promoted)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    tensors = promote("cat", *[ensure_tensor(t, "cat") for t in tensors])
    # PyTorch skips 1-d empty tensors, a legacy convenience for growing a result
    skip = [t.ndim == 1 and t.shape[0] == 0 for t in tensors]
    ref = next((t for t, s in zip(tensors, skip) if not s), tensors[0])
    if ref.ndim == 0:
        i = next(i for i, t in enumerate(tensors) if t.ndim == 0)
        raise RuntimeError(f"cat: tensor {i} is zero-dimensional and cannot be concatenated")
    d = _wrap_dim(dim, ref.ndim, "cat")
    parts = []
    for i, (t, s) in enumerate(zip(tensors, skip)):
        if s:
            # a size-0 view of the common shape keeps it in the graph (zero gradient)
            t = t.reshape(ref.shape[:d] + (0,) + ref.shape[d + 1:])
        elif t.ndim != ref.ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, ref.shape))
                                       if k != d):
            raise RuntimeError(f"cat: tensor {i} has shape {tuple(t.shape)}, which does not "
                               f"match {tuple(ref.shape)} except in dim {d}")
        parts.append(t)
    return apply(Cat, tuple(parts), {"dim": d})


def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dim."""
    tensors = [ensure_tensor(t, "stack") for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: tensor {i} has shape {tuple(t.shape)}, tensor 0 has "
                               f"{tuple(tensors[0].shape)}; all must match")
    d = _wrap_dim(dim, tensors[0].ndim + 1, "stack")
    return apply(Cat, tuple(promote("stack", *[t.unsqueeze(d) for t in tensors])), {"dim": d})


def hstack(tensors) -> Tensor:
    """cat along dim 1 (dim 0 for 1-d tensors)."""
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """cat along dim 0, 1-d tensors taken as rows."""
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


class Pad(Function):
    autocast = None
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, pads, value):
        ctx.index = tuple(slice(a, a + s) for (a, _), s in zip(pads, x.shape))
        return B.pad(x, pads, value)

    def backward(self, g):
        return g[self.index]


def pad(x, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding; `pad` lists (before, after) pairs from the last dim backwards,
    as torch.nn.functional.pad."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    x = ensure_tensor(x, "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(f"pad: {pad} must have an even length of at most 2 * ndim "
                           f"({2 * x.ndim} for shape {tuple(x.shape)})")
    if any(p < 0 for p in pad):
        raise NotImplementedError(f"pad: negative padding {pad} (cropping) is not supported")
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return apply(Pad, (x,), {"pads": tuple(pairs), "value": value})


class Flip(Function):
    autocast = None
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, dims):
        ctx.dims = dims
        return B.flip(x, dims)

    def backward(self, g):
        return g.flip(self.dims)


def flip(x, *dims) -> Tensor:
    """A copy with the order of elements reversed along `dims` (a sequence, or the dims
    as separate arguments: ``x.flip(0, 1)``, as PyTorch's method)."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    dims = tuple(_wrap_dim(d, x.ndim, "flip") for d in dims)
    return apply(Flip, (x,), {"dims": dims})


class Tile(Function):
    autocast = None
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, reps):
        ctx.shape, ctx.reps = x.shape, reps
        return B.tile(x, reps)

    def backward(self, g):
        # fold every repetition onto its own axis, then sum those axes
        shape = self.shape
        lead = len(self.reps) - len(shape)
        full = (1,) * lead + shape
        split = []
        for r, s in zip(self.reps, full):
            split += [r, s]
        summed = g.reshape(split).sum(tuple(range(0, 2 * len(full), 2)))
        return summed.reshape(shape)


def repeat(x, *sizes) -> Tensor:
    """Tile the tensor `sizes[i]` times along each dim (PyTorch's Tensor.repeat)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise RuntimeError(f"repeat: {len(sizes)} repeat counts for a tensor with {x.ndim} dims")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"repeat: counts must be non-negative, got {sizes}")
    return apply(Tile, (x,), {"reps": tuple(int(s) for s in sizes)})


def _check_index_tensor(index: Tensor, op: str) -> None:
    if index.dtype not in (_dt.int64, _dt.int32, _dt.int8):
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype.name}")


def index_bounds(index: Tensor):
    """(smallest, largest) value of an integer tensor as Python ints, read through its
    backend (two reductions and one small copy to the host); None when it is empty or
    on the meta device, which holds no values."""
    a = index._data
    if a.size == 0 or index.is_meta:
        return None
    B = backend_of(a)
    flat = reshape_array(B, a, (a.size,))
    lo = host.to_list(B.to_host(B.amin(flat, (0,), False)))
    hi = host.to_list(B.to_host(B.amax(flat, (0,), False)))
    return lo, hi


def _check_range(index: Tensor, size: int, op: str, dim: int) -> None:
    """Refuse an index outside [0, size) before a kernel runs.  Negative indices are
    refused too, as PyTorch's gather, scatter, scatter_add and index_select do (the
    kernels would wrap them, as Python does, and give numbers where PyTorch raises)."""
    bounds = index_bounds(index)
    if bounds is None:
        return
    lo, hi = bounds
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size {size}"
                         + (" (negative indices are not accepted by this op)" if bad < 0 else ""))


class Gather(Function):
    # the index (backward scatters through it) and, as PyTorch, the input: a write into
    # either before the backward is an error there, and tinyfw answers alike
    autocast = None
    save_inputs = True
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, index, dim):
        ctx.shape, ctx.dim = x.shape, dim
        return B.gather(x, dim, index)

    def backward(self, g):
        idx = self.saved_inputs[1]
        return apply(ScatterAdd, (g.new_zeros(self.shape), idx, g), {"dim": self.dim}), None


def _check_gather_shapes(x: Tensor, index: Tensor, dim: int, op: str) -> None:
    if index.ndim != x.ndim and not (index.numel() == 0 and index.ndim == 1):
        raise RuntimeError(f"{op}: index has {index.ndim} dims but the input has {x.ndim} "
                           f"(shapes {tuple(index.shape)} and {tuple(x.shape)})")
    for k, (a, b) in enumerate(zip(index.shape, x.shape)):
        if k != dim and a > b and index.numel():
            raise RuntimeError(f"{op}: index size {a} at dim {k} exceeds the input's {b}")


def gather(x, dim: int, index) -> Tensor:
    """out[i][j] = x[i][index[i][j]] along `dim` (index has x's number of dims)."""
    x, index = ensure_tensor(x, "gather"), ensure_tensor(index, "gather")
    _check_index_tensor(index, "gather")
    d = _wrap_dim(dim, x.ndim, "gather")
    _check_gather_shapes(x, index, d, "gather")
    _check_range(index, x.shape[d] if x.ndim else 1, "gather", d)
    return apply(Gather, (x, index), {"dim": d})


class ScatterAdd(Function):
    autocast = None
    save_inputs = slice(1, 2)  # the index: backward gathers through it
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, index, src, dim):
        ctx.dim, ctx.src_shape = dim, src.shape
        return B.scatter_add(x, dim, index, src)

    def backward(self, g):
        gsrc = None
        if self.next[2] is not None:
            idx, = self.saved_inputs
            gsrc = apply(Gather, (g, idx), {"dim": self.dim})
            if gsrc.shape != self.src_shape:
                gsrc = gsrc.new_zeros(self.src_shape).index_put_slice(gsrc)
        return g, None, gsrc


def scatter_add(x, dim: int, index, src) -> Tensor:
    """A copy of x with src[i][j] added at x[i][index[i][j]] along `dim`."""
    x, index, src = (ensure_tensor(v, "scatter_add") for v in (x, index, src))
    _check_index_tensor(index, "scatter_add")
    d = _wrap_dim(dim, x.ndim, "scatter_add")
    _check_gather_shapes(x, index, d, "scatter_add")
    _check_gather_shapes(src, index, d if src.ndim else 0, "scatter_add")
    _check_range(index, x.shape[d], "scatter_add", d)
    if src.dtype is not x.dtype:
        src = src.to(x.dtype)
    return apply(ScatterAdd, (x, index, src), {"dim": d})


class Scatter(Function):
    autocast = None
    save_inputs = slice(1, 2)  # the index
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, index, src, dim):
        ctx.dim = dim
        return B.scatter(x, dim, index, src)

    def backward(self, g):
        idx, = self.saved_inputs
        gx = apply(Scatter, (g, idx, g.new_zeros(idx.shape)), {"dim": self.dim})
        gsrc = apply(Gather, (g, idx), {"dim": self.dim}) if self.next[2] is not None else None
        return gx, None, gsrc


def scatter(x, dim: int, index, src) -> Tensor:
    """A copy of x with src written at `index` along `dim` (src may be a number)."""
    x, index = ensure_tensor(x, "scatter"), ensure_tensor(index, "scatter")
    if not isinstance(src, Tensor):
        src = x.new_full(index.shape, src)
    _check_index_tensor(index, "scatter")
    d = _wrap_dim(dim, x.ndim, "scatter")
    _check_gather_shapes(x, index, d, "scatter")
    _check_range(index, x.shape[d], "scatter", d)
    return apply(Scatter, (x, index, src.to(x.dtype)), {"dim": d})


# -- advanced indexing -------------------------------------------------------------------
class _IndexTensor:
    """The marker of an index tensor's place in an index spec (see `index_spec`)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TENSOR"

    def __reduce__(self):
        return (_IndexTensor, ())


#: stands for "the next index tensor input" in an index spec
TENSOR = _IndexTensor()


def index_spec(x: Tensor, index, op: str) -> tuple:
    """Split a user index into (spec, tensors): `spec` is a tuple of ints, slices, None,
    Ellipsis and TENSOR (a plain value, kept in the op's attrs), `tensors` the integer or
    bool index tensors in order (inputs of the op, so they move with the data and their
    versions are checked when the backward reads them).  Lists and numpy arrays become
    tensors on x's device."""
    idx = index if isinstance(index, tuple) else (index,) if not _sequence_as_tuple(index) \
        else tuple(index)
    spec, tensors = [], []
    for i in idx:
        if i is None or i is Ellipsis or isinstance(i, slice):
            spec.append(i)
            continue
        if host.is_integer(i):
            spec.append(int(i))
            continue
        if isinstance(i, Tensor):
            t = i
        elif isinstance(i, (list, bool)) or host.is_host_array(i):
            from ..creation import tensor

            t = tensor(i, device=x.device)
            if t.numel() == 0 and isinstance(i, list):
                t = t.to(_dt.int64)  # x[[]]: an empty integer index, as in PyTorch
            if t.dtype.is_floating_point:
                raise IndexError(f"{op}: index lists must hold integers or bools")
        elif isinstance(i, float):
            raise IndexError(f"{op}: float index {i}; indices must be integers")
        else:
            raise IndexError(f"{op}: unsupported index of type {type(i).__name__}")
        if t.dtype.is_floating_point:
            raise IndexError(f"{op}: tensors used as indices must be integer or bool, got "
                             f"{t.dtype.name}")
        if t.dtype is _dt.uint8:  # PyTorch still reads a uint8 index as a mask, and warns
            import warnings

            warnings.warn(f"{op}: indexing with dtype uint8 is deprecated, use a bool mask "
                          "instead", UserWarning, stacklevel=3)
            t = t.to(_dt.bool_)
        spec.append(TENSOR)
        tensors.append(t)
    if Ellipsis in spec and tensors:
        # spelled out: numpy counts an Ellipsis between two index tensors as separating
        # them even when it stands for no dim (their dims then go first), PyTorch does not
        used = 0
        it = iter(tensors)
        for s in spec:
            if s is TENSOR:
                t = next(it)
                used += t.ndim if t.dtype is _dt.bool_ else 1
            elif s is not None and s is not Ellipsis:
                used += 1
        k = spec.index(Ellipsis)
        spec[k:k + 1] = [slice(None)] * max(x.ndim - used, 0)
    return tuple(spec), tensors


def _sequence_as_tuple(index) -> bool:
    """PyTorch's legacy rule (still in 2.13, with a deprecation warning): a list holding a
    tensor, a sequence, a slice, None or Ellipsis indexes like a tuple (x[[[0, 1]]] is
    x[[0, 1]]); a list of plain numbers is one index tensor."""
    if not isinstance(index, list) or len(index) >= 32:
        return False
    return any(isinstance(i, (Tensor, list, tuple, slice)) or i is None or i is Ellipsis
               for i in index)


def _is_int0(t: Tensor) -> bool:
    return t.ndim == 0 and not t.dtype.is_floating_point and t.dtype is not _dt.bool_


def torch_order(spec: tuple, tensors: list):
    """(pre, spec, tensors): PyTorch applies integer indices (and 0-d integer tensors, read
    to the host as it does) as selects BEFORE the advanced indices, where numpy counts
    them as advanced indices; they differ when an integer is separated from an index
    tensor by a slice (x[0, :, [1, 2]] is (3, 2) in PyTorch, (2, 3) in numpy).  `pre`
    (None when nothing needs splitting) is the basic index of the selects, with the
    dims of the other entries kept whole; `spec` and `tensors` then index its result."""
    if not tensors:
        return None, spec, tensors
    it = iter(tensors)
    kinds = [(s, next(it)) if s is TENSOR else (s, None) for s in spec]
    if not any(host.is_integer(s) or (t is not None and _is_int0(t)) for s, t in kinds):
        return None, spec, tensors
    if all(t is None or _is_int0(t) for _, t in kinds):  # basic indexing after all: a view
        return tuple(int(t.item()) if t is not None else s for s, t in kinds), None, []
    pre, rest, rest_t = [], [], []
    for s, t in kinds:
        if t is not None and _is_int0(t):
            pre.append(int(t.item()))
        elif host.is_integer(s):
            pre.append(s)
        elif s is None:  # (no Ellipsis here: index_spec spelled it out)
            rest.append(None)
        else:
            pre.extend([slice(None)] * (t.ndim if t is not None and t.dtype is _dt.bool_ else 1))
            rest.append(s)
            if t is not None:
                rest_t.append(t)
    return tuple(pre), tuple(rest), rest_t


def _fill(spec: tuple, arrays) -> tuple:
    """The backend's index tuple: spec with each TENSOR replaced by the next array."""
    if len(arrays) == len(spec):  # tensors only (x[i], x[i, j]): the arrays as they are
        return tuple(arrays)
    it = iter(arrays)
    return tuple(next(it) if s is TENSOR else s for s in spec)


_ONE_TENSOR = (TENSOR,)


def _indexed(run, x: Tensor, index, op: str):
    # the kernels check the index values (bounds, mask shapes); say which tensor and index
    try:
        return run()
    except IndexError as e:
        raise IndexError(f"{op}: index {index!r} does not fit a tensor of shape "
                         f"{tuple(x.shape)}: {e}") from None


class Index(Function):
    """x[index] for an index with tensors in it; inputs (x, *index tensors), attrs
    ``index`` (the spec, see `index_spec`)."""
    autocast = None

    save_inputs = slice(1, None)  # the index tensors, not the data
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, *idx, index):
        ctx.shape, ctx.index = x.shape, index
        return B.index(x, _fill(index, idx))

    def backward(self, g):
        idx = self.saved_inputs
        gx = apply(IndexPut, (g.new_zeros(self.shape), g, *idx),
                   {"index": self.index, "accumulate": True})
        return (gx,) + (None,) * len(idx)


class IndexPut(Function):
    """A copy of x with x[index] = values (or += with accumulate); inputs (x, values,
    *index tensors), attrs ``index`` (the spec) and ``accumulate``."""
    autocast = None

    save_inputs = slice(2, None)  # the index tensors
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, values, *idx, index, accumulate, pre=None):
        ctx.index, ctx.accumulate, ctx.vshape, ctx.pre = index, accumulate, values.shape, pre
        if pre is None:
            return B.index_put(x, _fill(index, idx), values, accumulate)
        # integer selects first (see torch_order): the write goes through a view of a copy
        out = B.empty(x.shape, x.dtype)
        B.copy_(out, x)
        B.index_put_(B.slice_view(out, pre), _fill(index, idx), values, accumulate)
        return out

    def backward(self, g):
        idx = self.saved_inputs
        gx = gv = None
        if self.next[0] is not None:
            gx = g if self.accumulate else apply(
                IndexPut, (g, g.new_zeros(()), *idx),
                {"index": self.index, "accumulate": False, "pre": self.pre})
        if self.next[1] is not None:
            src = g if self.pre is None else slice_view(g, self.pre)
            gv = unbroadcast(apply(Index, (src, *idx), {"index": self.index}), self.vshape)
        return (gx, gv) + (None,) * len(idx)


def getitem(x, index) -> Tensor:
    """x[index]: basic indexing gives a view, integer/bool tensors give a copy."""
    if type(index) is Tensor and index._data.dtype.kind in "bi":
        # x[i], the common case (embedding lookups, masks): no spec to build
        return _indexed(lambda: apply(Index, (x, index), {"index": _ONE_TENSOR}), x, index,
                        "index")
    if _is_basic(index):
        return slice_view(x, index)
    spec, tensors = index_spec(x, index, "index")
    pre, spec, tensors = torch_order(spec, tensors)
    if pre is not None:
        x = slice_view(x, pre)
        if spec is None:
            return x
    return _indexed(lambda: apply(Index, (x, *tensors), {"index": spec}), x, index, "index")


def index_put(x, indices, values, accumulate: bool = False) -> Tensor:
    """A copy of x with x[indices] = values (or += when accumulate)."""
    spec, tensors = index_spec(x, indices, "index_put")
    pre, spec, tensors = torch_order(spec, tensors)
    values = ensure_tensor(values, "index_put")
    if values.dtype is not x.dtype:
        values = values.to(x.dtype)
    if pre is not None:
        pre = _check_basic(x, pre)
    if spec is None:  # selects only: index_put of a basic index (a view's elements)
        spec, pre = pre, None
    attrs = {"index": spec, "accumulate": accumulate}
    if pre is not None:
        attrs["pre"] = pre
    return _indexed(lambda: apply(IndexPut, (x, values, *tensors), attrs),
                    x, indices, "index_put")


def index_select(x, dim: int, index) -> Tensor:
    """The entries of x at positions `index` (1-d integer tensor) along `dim`."""
    index = ensure_tensor(index, "index_select")
    _check_index_tensor(index, "index_select")
    if index.ndim > 1:
        raise RuntimeError(f"index_select: index must be 1-d, got shape {tuple(index.shape)}")
    d = _wrap_dim(dim, x.ndim, "index_select")
    _check_range(index, x.shape[d] if x.ndim else 1, "index_select", d)
    return getitem(x, (slice(None),) * d + (index.reshape(-1),))


def masked_fill(x, mask, value) -> Tensor:
    """x with `value` wherever the bool `mask` (broadcast to x) is True."""
    from .elementwise import where

    mask = ensure_tensor(mask, "masked_fill")
    if mask.dtype is not _dt.bool_:
        raise TypeError(f"masked_fill: mask must be bool, got {mask.dtype.name}")
    if isinstance(value, Tensor):
        value = value.to(x.dtype)
    else:
        value = x.new_full((), value)
    out = where(mask, value, x)
    if out.shape != x.shape:
        raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast "
                           f"to the input's shape {tuple(x.shape)}")
    return out


def masked_select(x, mask) -> Tensor:
    """The 1-d tensor of elements of x where `mask` is True."""
    mask = ensure_tensor(mask, "masked_select")
    if mask.shape != x.shape:
        mask = mask.expand(*x.shape)
    return getitem(x, mask)


class Tri(Function):
    autocast = None
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, k, upper):
        ctx.k, ctx.upper = k, upper
        return B.triu(x, k) if upper else B.tril(x, k)

    def backward(self, g):
        return apply(Tri, (g,), {"k": self.k, "upper": self.upper})


def triu(x, diagonal: int = 0) -> Tensor:
    """Elements on and above the `diagonal`-th diagonal of the last two dims; the rest 0."""
    if x.ndim < 2:
        raise RuntimeError(f"triu: needs at least 2 dims, got shape {tuple(x.shape)}")
    return apply(Tri, (x,), {"k": int(diagonal), "upper": True})


def tril(x, diagonal: int = 0) -> Tensor:
    """Elements on and below the `diagonal`-th diagonal of the last two dims; the rest 0."""
    if x.ndim < 2:
        raise RuntimeError(f"tril: needs at least 2 dims, got shape {tuple(x.shape)}")
    return apply(Tri, (x,), {"k": int(diagonal), "upper": False})


class Sort(Function):
    autocast = None
    save_aux = True  # the indices (returned to the user too): backward scatters through them
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, dim, descending):
        values, idx = B.sort(x, dim, descending)
        ctx.shape, ctx.dim = x.shape, dim
        return values, idx

    def backward(self, g):
        idx, = self.saved_aux
        return apply(ScatterAdd, (g.new_zeros(self.shape), idx, g), {"dim": self.dim})


def sort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along `dim`; always stable (`stable` is accepted for
    PyTorch's signature), NaN sorting as the largest value."""
    from .reduce import values_indices

    d = _wrap_dim(dim, x.ndim, "sort")
    if x.ndim == 0:
        return values_indices(x, x.new_zeros((), dtype=_dt.int64))
    if descending and x.dtype.is_floating_point:
        # PyTorch counts NaN as larger than every number (max() agrees: it returns NaN),
        # so a descending sort puts NaNs first; the kernels' descending order puts them
        # last.  The ascending sort of the reversed input, reversed, is the stable
        # descending order with NaNs first (equal values keep their order); three O(n)
        # flips, no host sync.
        n = x.shape[d]
        v, i = apply(Sort, (x.flip(d),), {"dim": d, "descending": False})
        return values_indices(v.flip(d), (n - 1) - i.flip(d))
    return values_indices(*apply(Sort, (x,), {"dim": d, "descending": descending}))


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the k largest (or smallest) entries along `dim`."""
    from .reduce import values_indices

    d = _wrap_dim(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k={k} is out of range for dim {d} of size {n}")
    v, i = sort(x, d, descending=largest)
    sl = (slice(None),) * d + (slice(0, k),)
    return values_indices(v[sl], i[sl])


def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort x along `dim` (always stable, as sort)."""
    return sort(x, dim, descending).indices


def _index_put_slice(x: Tensor, src: Tensor) -> Tensor:
    # x with src written over its leading corner; used to pad gradients of scatter sources
    return index_put(x, tuple(slice(0, s) for s in src.shape), src)


_METHODS = {
    "__getitem__": getitem, "flip": flip, "repeat": repeat, "gather": gather,
    "scatter_add": scatter_add, "scatter": scatter, "index_select": index_select,
    "index_put": index_put, "masked_fill": masked_fill, "masked_select": masked_select,
    "triu": triu, "tril": tril, "sort": sort, "topk": topk, "argsort": argsort,
    "index_put_slice": _index_put_slice,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
