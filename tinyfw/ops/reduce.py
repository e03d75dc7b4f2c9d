"""Reductions over one or several dims: sum, mean, prod, max/min, var/std, norms ..."""
from __future__ import annotations

import math
from collections import namedtuple

from .. import dtypes as _dt
from ..autograd.function import Function
from ..backend.host import is_integer
from ..tensor import register_method
from ._opmeta import no_flops, per_input, per_output
from ._util import Tensor, _wrap_dim, apply, dims_of, ensure_tensor, reshape_array

values_indices = namedtuple("values_indices", ["values", "indices"])


def _keep_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _regrow(g: Tensor, shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """A reduced gradient reshaped with 1s in the reduced dims (ready to broadcast)."""
    return g if keepdim else g.reshape(_keep_shape(shape, dims))


def _check_nonempty(x: Tensor, dims: tuple, op: str) -> None:
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"{op}: cannot reduce over dim {d} of size 0 (shape "
                             f"{tuple(x.shape)}): the operation has no identity")
    if x.ndim == 0 or not dims:
        if x.numel() == 0:
            raise IndexError(f"{op}: the tensor is empty")


def _sum_onnx(b, n, ins: list, out: str) -> None:
    b.reduce("ReduceSum", ins[0], out, n.attrs["dims"], n.attrs["keepdim"])


def _amax_onnx(b, n, ins: list, out: str) -> None:
    b.reduce("ReduceMax" if n.attrs["largest"] else "ReduceMin", ins[0], out, n.attrs["dims"],
             n.attrs["keepdim"])


class Sum(Function):
    autocast = "float32"
    onnx = staticmethod(_sum_onnx)
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return B.sum(x, dims, keepdim)

    def backward(self, g):
        return apply(_SumGrad, (g,), {"shape": self.shape, "dims": self.dims,
                                      "keepdim": self.keepdim})


class _SumGrad(Function):
    """Sum's backward as one view op: the reduced gradient broadcast back to the input's
    shape (one dispatch instead of a reshape and an expand); its own backward is the sum."""
    autocast = None

    flops = no_flops
    is_view = True

    @staticmethod
    def forward(ctx, B, g, shape, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        if not keepdim:
            g = reshape_array(B, g, _keep_shape(shape, dims))
        return B.expand(g, shape)

    def backward(self, gg):
        return gg.sum(self.dims, keepdim=self.keepdim)


class Prod(Function):
    autocast = "float32"
    flops = per_input(1)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        return B.prod(x, dims, keepdim)

    def backward(self, g):
        x = self.saved_inputs[0]
        dims, keep = self.dims, self.keepdim
        g = _regrow(g, x.shape, dims, keep)
        out = _regrow(self.output, x.shape, dims, keep)
        is_zero = x == 0
        zeros = is_zero.sum(dims, keepdim=True)
        safe = where(is_zero, 1.0, x)
        # with one zero in a group, that element's gradient is the product of the others
        others = safe.prod(dims, keepdim=True)
        grad = where(zeros == 0, out / safe, where(is_zero & (zeros == 1), others, 0.0))
        return g * grad.to(g.dtype)


class Amax(Function):
    autocast = None
    onnx = staticmethod(_amax_onnx)
    flops = per_input(1)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dims, keepdim, largest):
        ctx.dims, ctx.keepdim = dims, keepdim
        return (B.amax if largest else B.amin)(x, dims, keepdim)

    def backward(self, g):
        x = self.saved_inputs[0]
        out = _regrow(self.output, x.shape, self.dims, self.keepdim)
        mask = (x == out).to(g.dtype)
        # ties share the gradient evenly, as PyTorch's amax/amin
        return _regrow(g, x.shape, self.dims, self.keepdim) * mask / mask.sum(self.dims, keepdim=True)


class MaxDim(Function):
    autocast = None
    save_aux = True  # the indices (returned to the user too): backward scatters through them
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, dim, keepdim, largest):
        idx = (B.argmax if largest else B.argmin)(x, dim, True)
        values = B.gather(x, dim, idx)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        if not keepdim:
            shape = values.shape[:dim] + values.shape[dim + 1:]
            values, idx = reshape_array(B, values, shape), reshape_array(B, idx, shape)
        return values, idx

    def backward(self, g):
        from .index import ScatterAdd

        idx, = self.saved_aux
        if not self.keepdim:
            g, idx = g.unsqueeze(self.dim), idx.unsqueeze(self.dim)
        return apply(ScatterAdd, (g.new_zeros(self.shape), idx, g), {"dim": self.dim})


class ArgMax(Function):
    autocast = None
    flops = per_input(1)
    differentiable = False

    @staticmethod
    def forward(ctx, B, x, dim, keepdim, largest):
        return (B.argmax if largest else B.argmin)(x, dim, keepdim)


class Any(Function):
    autocast = None
    flops = per_input(1)
    differentiable = False

    @staticmethod
    def forward(ctx, B, x, dims, keepdim, every):
        return (B.all if every else B.any)(x, dims, keepdim)


class Cumsum(Function):
    autocast = "float32"
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, dim):
        ctx.dim = dim
        return B.cumsum(x, dim)

    def backward(self, g):
        return g.flip(self.dim).cumsum(self.dim).flip(self.dim)


def sum(x, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Sum over `dim` (all dims when None); ints and bools sum to int64."""
    x = ensure_tensor(x, "sum")
    if dtype is not None:
        x = x.to(dtype)
    return apply(Sum, (x,), {"dims": dims_of(dim, x.ndim, "sum"), "keepdim": keepdim})


def mean(x, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Arithmetic mean over `dim` (floating-point tensors only, as PyTorch)."""
    x = ensure_tensor(x, "mean")
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise TypeError(f"mean: input dtype must be floating point, got {x.dtype.name}; "
                        "call .float() first")
    dims = dims_of(dim, x.ndim, "mean")
    n = math.prod(x.shape[d] for d in dims)
    return apply(Sum, (x,), {"dims": dims, "keepdim": keepdim}) / (n if n else float("nan"))


def prod(x, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Product over `dim` (all dims when None)."""
    x = ensure_tensor(x, "prod")
    if dtype is not None:
        x = x.to(dtype)
    return apply(Prod, (x,), {"dims": dims_of(dim, x.ndim, "prod"), "keepdim": keepdim})


def amax(x, dim=None, keepdim: bool = False) -> Tensor:
    """Maximum over `dim` (several dims allowed); ties share the gradient."""
    x = ensure_tensor(x, "amax")
    dims = dims_of(dim, x.ndim, "amax")
    _check_nonempty(x, dims, "amax")
    return apply(Amax, (x,), {"dims": dims, "keepdim": keepdim, "largest": True})


def amin(x, dim=None, keepdim: bool = False) -> Tensor:
    """Minimum over `dim` (several dims allowed); ties share the gradient."""
    x = ensure_tensor(x, "amin")
    dims = dims_of(dim, x.ndim, "amin")
    _check_nonempty(x, dims, "amin")
    return apply(Amax, (x,), {"dims": dims, "keepdim": keepdim, "largest": False})


def _max_min(x, dim, keepdim, largest: bool, op: str):
    x = ensure_tensor(x, op)
    if dim is None:
        return amax(x) if largest else amin(x)
    if isinstance(dim, Tensor) or not is_integer(dim):
        fn = maximum_ if largest else minimum_
        return fn(x, ensure_tensor(dim, op))
    d = _wrap_dim(int(dim), x.ndim, op)
    if x.ndim == 0:
        return values_indices(x, x.new_zeros((), dtype=_dt.int64))
    _check_nonempty(x, (d,), op)
    v, i = apply(MaxDim, (x,), {"dim": d, "keepdim": keepdim, "largest": largest})
    return values_indices(v, i)


def max(x, dim=None, keepdim: bool = False):
    """max(x): the largest element; max(x, dim): (values, indices) along dim;
    max(x, other): elementwise maximum."""
    return _max_min(x, dim, keepdim, True, "max")


def min(x, dim=None, keepdim: bool = False):
    """min(x): the smallest element; min(x, dim): (values, indices) along dim;
    min(x, other): elementwise minimum."""
    return _max_min(x, dim, keepdim, False, "min")


def _arg(x, dim, keepdim, largest, op):
    x = ensure_tensor(x, op)
    if dim is None:
        x = x.reshape(-1)
        d, keepdim = 0, False
    else:
        d = _wrap_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return x.new_zeros((), dtype=_dt.int64)
    _check_nonempty(x, (d,), op)
    return apply(ArgMax, (x,), {"dim": d, "keepdim": keepdim, "largest": largest})


def argmax(x, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the (first) maximum, along `dim` or over the flattened tensor."""
    return _arg(x, dim, keepdim, True, "argmax")


def argmin(x, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the (first) minimum, along `dim` or over the flattened tensor."""
    return _arg(x, dim, keepdim, False, "argmin")


def any(x, dim=None, keepdim: bool = False) -> Tensor:
    """True where any element is non-zero."""
    x = ensure_tensor(x, "any")
    return apply(Any, (x,), {"dims": dims_of(dim, x.ndim, "any"), "keepdim": keepdim,
                             "every": False})


def all(x, dim=None, keepdim: bool = False) -> Tensor:
    """True where all elements are non-zero."""
    x = ensure_tensor(x, "all")
    return apply(Any, (x,), {"dims": dims_of(dim, x.ndim, "all"), "keepdim": keepdim,
                             "every": True})


def var(x, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """Variance over `dim`, dividing by N - correction (correction=1 unless unbiased=False)."""
    x = ensure_tensor(x, "var")
    if unbiased is not None and correction is not None:
        raise ValueError("var: pass either unbiased or correction, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    dims = dims_of(dim, x.ndim, "var")
    n = math.prod(x.shape[d] for d in dims)
    centered = x - mean(x, dims, keepdim=True)
    # N - correction <= 0 divides by 0 (inf, or NaN for a zero numerator), as PyTorch
    denom = n - correction
    return sum(centered * centered, dims, keepdim) / (denom if denom > 0 else 0)


class _StdSqrt(Function):
    """sqrt with the subgradient 0 where the variance is 0 (PyTorch's std backward)."""
    autocast = None

    flops = per_output(1)
    save_output = True

    @staticmethod
    def forward(ctx, B, v):
        return B.sqrt(v)

    def backward(self, g):
        out = self.output
        return where(out == 0, g.new_zeros(()), g / (out * 2))


def std(x, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """Standard deviation: sqrt(var); a constant slice gets gradient 0, not NaN."""
    v = var(x, dim, unbiased, keepdim, correction=correction)
    return apply(_StdSqrt, (v,), {})


def logsumexp(x, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed stably by shifting by the max."""
    x = ensure_tensor(x, "logsumexp")
    dims = dims_of(dim, x.ndim, "logsumexp")
    if x.numel() == 0:
        return sum(x.exp(), dims, keepdim).log()
    m = amax(x.detach(), dims, keepdim=True)
    m = where(m.isinf(), 0.0, m)
    out = sum((x - m).exp(), dims, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dims)


def norm(x, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """Vector p-norm over `dim` (p = 1, 2, inf, -inf, 0 or any positive float; 'fro' = 2)."""
    x = ensure_tensor(x, "norm")
    if not x.dtype.is_floating_point:
        raise TypeError(f"norm: input must be floating point, got {x.dtype.name}")
    if p == "fro":
        p = 2
    dims = dims_of(dim, x.ndim, "norm")
    a = x.abs()
    if p == math.inf:
        return amax(a, dims, keepdim)
    if p == -math.inf:
        return amin(a, dims, keepdim)
    if p == 0:
        return sum((x != 0).to(x.dtype), dims, keepdim)
    if p == 1:
        return sum(a, dims, keepdim)
    if p == 2:
        return apply(Norm2, (x,), {"dims": dims, "keepdim": keepdim})
    return sum(a ** p, dims, keepdim) ** (1.0 / p)


class Norm2(Function):
    autocast = "float32"
    flops = per_input(1)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        s = B.sum(B.mul(x, x), dims, keepdim)
        return B.sqrt(s)

    def backward(self, g):
        x = self.saved_inputs[0]
        out = _regrow(self.output, x.shape, self.dims, self.keepdim)
        g = _regrow(g, x.shape, self.dims, self.keepdim)
        # the subgradient 0 at the zero vector, as PyTorch
        return where(out == 0, 0.0, g * x / where(out == 0, 1.0, out)).to(g.dtype)


def cumsum(x, dim: int, *, dtype=None) -> Tensor:
    """Running sum along `dim`; bools and ints give int64.  A 0-d input gives a 0-d
    result (the kernels, numpy's rule, would give shape (1,))."""
    x = ensure_tensor(x, "cumsum")
    if dtype is not None:
        x = x.to(dtype)
    if x.ndim == 0:
        _wrap_dim(dim, 1, "cumsum")
        return apply(Cumsum, (x.reshape(1),), {"dim": 0}).reshape(())
    return apply(Cumsum, (x,), {"dim": _wrap_dim(dim, x.ndim, "cumsum")})


def count_nonzero(x, dim=None) -> Tensor:
    """Number of non-zero elements over `dim`."""
    return sum(ensure_tensor(x, "count_nonzero") != 0, dim)


from .elementwise import maximum as maximum_, minimum as minimum_, where  # noqa: E402

_METHODS = {
    "sum": sum, "mean": mean, "prod": prod, "amax": amax, "amin": amin, "max": max,
    "min": min, "argmax": argmax, "argmin": argmin, "any": any, "all": all, "var": var,
    "std": std, "logsumexp": logsumexp, "norm": norm, "cumsum": cumsum,
    "count_nonzero": count_nonzero,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
