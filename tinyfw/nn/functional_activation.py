"""Activations of ``tinyfw.nn.functional`` added for issue 16 (PyTorch's names, arguments
and semantics), composed from tinyfw ops: gradients of every order, every backend and the
tracer come from the ops they are made of.

Selects (``where``) rather than products route the gradients, so a NaN input stays NaN and
the kinks get PyTorch's one-sided derivatives; the in-place ``x_`` forms (and
``inplace=True``) are the out-of-place op written into the tensor through
``ops/inplace.py`` (computed from a clone when autograd records, the version counter,
rebased history, the leaf check).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..creation import arange, rand
from ..ops._util import Tensor, ensure_tensor
from ..ops.activation_more import hardshrink, prelu, relu_  # noqa: F401
from ..ops.elementwise import leaky_relu as _leaky_relu
from ..ops.elementwise import softplus, where
from ..ops.inplace import _inplace
from ..ops.nn import check_float
from ..ops.nn import log_softmax as _log_softmax
from ..ops.nn import softmax as _softmax
from ..random import Generator
from .functional import elu, hardtanh

# SELU's constants (Klambauer et al. 2017), to PyTorch's digits
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _float(input, op: str) -> Tensor:
    x = ensure_tensor(input, op)
    check_float(x, op)
    return x


_HALF = (_dt.float16, _dt.bfloat16)


def _opmath(fn):
    """fn computed in float32 for float16/bfloat16 inputs and rounded once, as PyTorch's
    kernels do (a composition rounding after each op would be a few ulps off)."""
    def run(x: Tensor) -> Tensor:
        if x.dtype in _HALF:
            return fn(x.to(_dt.float32)).to(x.dtype)
        return fn(x)
    return run


def _apply(x: Tensor, fn, inplace: bool, op: str) -> Tensor:
    """fn(x) (in float32 for half inputs), or that written into x (ops/inplace.py: from a
    clone of x when autograd records, so the values fn saved for its backward are not
    overwritten)."""
    fn = _opmath(fn)
    return _inplace(fn, op)(x) if inplace else fn(x)


# -- PyTorch's signatures for the existing activations ------------------------------------
# (F.softmax/log_softmax/softmin take _stacklevel before dtype, as PyTorch's: code passing
# dtype positionally means the same here)
def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(input) / sum(exp(input)) along dim (PyTorch's legacy choice when None)."""
    return _softmax(input, dim, dtype)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """input - logsumexp(input) along dim (PyTorch's legacy choice when None)."""
    return _log_softmax(input, dim, dtype)


def softmin(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-input) along dim."""
    x = ensure_tensor(input, "softmin")
    if dtype is not None:
        x = x.to(dtype)
    return _softmax(-x, dim)


# -- piecewise-linear ----------------------------------------------------------------------
def _threshold(input, th: float, value: float, inplace: bool, op: str) -> Tensor:
    x = ensure_tensor(input, op)
    return _apply(x, lambda t: where(t <= th, t.new_full((), value), t), inplace, op)


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """input where input > threshold, else value (NaN passes through)."""
    return _threshold(input, threshold, value, inplace, "threshold")


def threshold_(input, threshold: float, value: float) -> Tensor:
    """threshold in place."""
    return _threshold(input, threshold, value, True, "threshold_")


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh in place."""
    x = ensure_tensor(input, "hardtanh_")
    return _apply(x, lambda t: hardtanh(t, min_val, max_val), True, "hardtanh_")


def leaky_relu_(input, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu in place."""
    x = ensure_tensor(input, "leaky_relu_")
    return _apply(x, lambda t: _leaky_relu(t, negative_slope), True, "leaky_relu_")


def softshrink(input, lambd: float = 0.5) -> Tensor:
    """input - lambd above lambd, input + lambd below -lambd, else 0."""
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambd must be >= 0, got {lambd}")

    def fn(x: Tensor) -> Tensor:
        inside = (x >= -lambd) & (x <= lambd)
        # inside: x * 0, the sign of zero of PyTorch's scalar loop (its vector loop: +0)
        return where(inside, x * 0, where(x > 0, x - lambd, x + lambd))
    return _apply(_float(input, "softshrink"), fn, False, "softshrink")


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(input + 3) / 6; the gradient is 1/6 strictly inside (-3, 3), else 0."""
    return _apply(_float(input, "hardsigmoid"), _hardsigmoid, inplace, "hardsigmoid")


def _hardsigmoid(x: Tensor) -> Tensor:
    inside = (x > -3) & (x < 3)
    # outside: 0 or 1, and NaN stays NaN (with no gradient, as PyTorch's)
    flat = where(x <= -3, x.new_zeros(()), where(x >= 3, x.new_ones(()), x.detach()))
    return where(inside, x / 6 + 0.5, flat)


def hardswish(input, inplace: bool = False) -> Tensor:
    """input * relu6(input + 3) / 6, with PyTorch's derivative (x/3 + 1/2 on [-3, 3])."""
    return _apply(_float(input, "hardswish"), _hardswish, inplace, "hardswish")


def _hardswish(x: Tensor) -> Tensor:
    # x * 0 up to -3: -0.0 for finite x and NaN for -inf, as PyTorch's x * relu6(x + 3) / 6;
    # the branch selects are PyTorch's backward's (slope 0 at -3, 1 at 3); the quadratic
    # sees only its own inputs, so inf stays out of its (unused) gradient
    inside = (x > -3) & (x < 3)
    xs = where(inside, x, 0.0)
    return where(x <= -3, x * 0, where(inside, xs * (xs + 3) / 6, x))


# -- smooth ---------------------------------------------------------------------------------
def elu_(input, alpha: float = 1.0) -> Tensor:
    """elu in place."""
    x = ensure_tensor(input, "elu_")
    return _apply(x, lambda t: elu(t, alpha), True, "elu_")


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (the negative branch divides by it)")

    def fn(x: Tensor) -> Tensor:
        # expm1 of the branch not taken stays finite; NaN takes the linear branch (its
        # gradient is the upstream one, as PyTorch's)
        neg = where(x <= 0, x, 0.0)
        return where(x <= 0, (neg / alpha).expm1() * alpha, x)
    return _apply(_float(input, "celu"), fn, inplace, "celu")


def celu_(input, alpha: float = 1.0) -> Tensor:
    """celu in place."""
    return celu(input, alpha, inplace=True)


def selu(input, inplace: bool = False) -> Tensor:
    """scale * elu(input, alpha) with SELU's self-normalising constants."""
    return _apply(_float(input, "selu"), _selu, inplace, "selu")


def _selu(x: Tensor) -> Tensor:
    neg = where(x <= 0, x, 0.0)
    return where(x <= 0, neg.expm1() * (SELU_ALPHA * SELU_SCALE), x * SELU_SCALE)


def selu_(input) -> Tensor:
    """selu in place."""
    return selu(input, inplace=True)


def softsign(input) -> Tensor:
    """input / (1 + |input|)."""
    return _apply(_float(input, "softsign"), lambda x: x / (x.abs() + 1), False, "softsign")


def tanhshrink(input) -> Tensor:
    """input - tanh(input)."""
    return _apply(_float(input, "tanhshrink"), lambda x: x - x.tanh(), False, "tanhshrink")


def mish(input, inplace: bool = False) -> Tensor:
    """input * tanh(softplus(input))."""
    return _apply(_float(input, "mish"), lambda x: x * softplus(x).tanh(), inplace, "mish")


def glu(input, dim: int = -1) -> Tensor:
    """a * sigmoid(b), where a and b are the two halves of `input` along `dim`."""
    x = _float(input, "glu")
    if x.ndim == 0:
        raise RuntimeError("glu: does not support a 0-d input")
    d = dim + x.ndim if dim < 0 else dim
    if not 0 <= d < x.ndim:
        raise IndexError(f"glu: dim {dim} is out of range for a {x.ndim}-d input")
    n = x.shape[d]
    if n % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dim {dim} of input "
                           f"{tuple(x.shape)} has size {n}")
    return _apply(x, lambda t: t.narrow(d, 0, n // 2) * t.narrow(d, n // 2, n // 2).sigmoid(),
                  False, "glu")


# -- randomised -----------------------------------------------------------------------------
def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, generator: Generator | None = None) -> Tensor:
    """Randomised leaky ReLU: while training each element <= 0 is multiplied by a slope
    drawn uniformly from [lower, upper) (the draw is the gradient too); in eval the slope
    is (lower + upper) / 2."""
    op = "rrelu"
    if lower > upper:
        raise ValueError(f"{op}: lower bound {lower} is greater than upper bound {upper}")
    x = _float(input, op)
    if not training:
        return _apply(x, lambda t: _leaky_relu(t, (lower + upper) / 2), inplace, op)
    with no_grad():
        u = rand(x.shape, generator=generator, dtype=_dt.float64, device=x.device)
        slope = (u * (upper - lower) + lower).to(x.dtype)
    # PyTorch's kernel takes the random slope at 0 too (input <= 0)
    return _apply(x, lambda t: where(t <= 0, t * slope, t), inplace, op)


def rrelu_(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, *,
           generator: Generator | None = None) -> Tensor:
    """rrelu in place."""
    return rrelu(input, lower, upper, training, inplace=True, generator=generator)


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1, *, generator: Generator | None = None) -> Tensor:
    """softmax((logits + g) / tau) with g standard Gumbel noise; with hard=True the one-hot
    of its argmax, with the soft sample's gradient (straight-through)."""
    op = "gumbel_softmax"
    x = _float(logits, op)
    if tau <= 0:
        raise ValueError(f"{op}: tau must be positive, got {tau}")
    with no_grad():
        # -log(E) with E = -log(1 - U) ~ Exp(1), U uniform in [0, 1); E = 0 (U = 0) would
        # give an infinite logit, so it becomes the smallest normal float64 (as PyTorch's
        # exponential_ never returns 0)
        u = rand(x.shape, generator=generator, dtype=_dt.float64, device=x.device)
        e = -(1 - u).log()
        e = where(e == 0, 2.2250738585072014e-308, e)
        g = (-e.log()).to(x.dtype)
    y = _softmax((x + g) / tau, dim)
    if not hard:
        return y
    index = y.detach().argmax(dim, keepdim=True)
    d = dim + y.ndim if dim < 0 else dim
    classes = y.shape[d] if y.ndim else 1
    shape = [1] * max(y.ndim, 1)
    shape[d if y.ndim else 0] = classes
    onehot = (arange(classes, device=y.device).reshape(shape) == index).to(y.dtype)
    return onehot - y.detach() + y


__all__ = ["softmax", "log_softmax", "softmin", "threshold",
           "threshold_", "relu_", "hardtanh_", "leaky_relu_", "softshrink", "hardshrink",
           "hardsigmoid", "hardswish", "elu_", "celu", "celu_", "selu", "selu_", "softsign",
           "tanhshrink", "mish", "glu", "prelu", "rrelu", "rrelu_", "gumbel_softmax"]
