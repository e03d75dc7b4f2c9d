"""Cumulative scans along one dim: cumprod, cummax, cummin, logcumsumexp (cumsum is in
reduce.py).  Primitives: tinyfw/backend/ref_scan.py (spec), csrc/scan.cpp (kernels).

Backwards are tinyfw ops, so second derivatives work:
- cumprod: the reversed running sum of g * y divided by x before a slice's first zero;
  at that zero the reversed running sum of g times the running product with the zero
  replaced by 1; after it 0, written so that its derivative is right too
  (`_cumprod_grad`; PyTorch's values, without dividing by zero);
- cummax/cummin: the gradient goes to the index that supplied each running value;
- logcumsumexp: sum_{i>=j} g_i exp(x_j - y_i), with g split into its positive and
  negative parts so each sum is a reversed logcumsumexp (never overflows: y_i >= x_j)."""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import register_method
from ._opmeta import per_input
from ._util import Tensor, _wrap_dim, apply, ensure_tensor


def _rev_cumsum(t: Tensor, d: int) -> Tensor:
    return t.flip(d).cumsum(d).flip(d)


class Cumprod(Function):
    autocast = "float32"
    flops = per_input(1)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        ctx.dim = dim
        return B.cumprod(x, dim)

    def backward(self, g):
        x, d = self.saved_inputs[0], self.dim
        return _cumprod_grad(x, self.output, g, d, second_order=True).to(g.dtype)


def _cumprod_grad(x: Tensor, y: Tensor, g: Tensor, d: int, second_order: bool) -> Tensor:
    """d(sum g * cumprod(x))/dx, split at each slice's first zero k:
    j < k: the reversed running sum of g * y over x_j;
    j = k: the reversed running sum of g * cumprod(x with x_k = 1);
    j > k: zero, written x_k * (the same gradient of x with x_k = 1) so that its
    derivative by x_k is right (second derivatives; x_k = 0 keeps the value 0)."""
    is_zero = x == 0
    seen = is_zero.to(_dt.int64).cumsum(d)
    before = seen == 0
    first = is_zero & (seen == 1)
    safe = where(is_zero, 1.0, x)
    g_before = _rev_cumsum(g * y, d) / safe
    x1 = where(first, 1.0, x)
    z = apply(Cumprod, (x1,), {"dim": d})
    g_first = _rev_cumsum(g * z, d)
    if second_order:
        xk = where(first, x, 0.0).sum(d, keepdim=True)
        after = xk * _cumprod_grad(x1, z, g, d, second_order=False)
    else:
        after = 0.0
    return where(before, g_before, where(first, g_first, after))


class CumExtreme(Function):
    autocast = None
    flops = per_input(1)
    save_aux = True  # the indices (returned to the user too): backward scatters through them

    @staticmethod
    def forward(ctx, B, x, dim, largest):
        ctx.shape, ctx.dim = x.shape, dim
        return (B.cummax if largest else B.cummin)(x, dim)

    def backward(self, g):
        from .index import ScatterAdd

        idx, = self.saved_aux
        return apply(ScatterAdd, (g.new_zeros(self.shape), idx, g), {"dim": self.dim})


class LogCumSumExp(Function):
    autocast = "float32"
    flops = per_input(4)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        ctx.dim = dim
        return B.logcumsumexp(x, dim)

    def backward(self, g):
        x, y, d = self.saved_inputs[0], self.output, self.dim
        # a masked-out g_i contributes exp(_TINY[dtype]) = 0 exactly; -inf there would
        # give the inner logcumsumexp an all -inf run, whose gradient is NaN (second
        # derivatives); NaN g passes through the first part, as PyTorch's
        tiny = _TINY[g.dtype.name]

        def part(mask: Tensor, mag: Tensor) -> Tensor:
            # exp(x_j + log sum_{i>=j} mag_i exp(-y_i)) over the masked g_i
            logmag = where(mask, where(mask, mag, 1.0).log(), tiny)
            s = apply(LogCumSumExp, ((logmag - y).flip(d),), {"dim": d}).flip(d)
            return (s + x).exp()

        return part((g > 0) | g.isnan(), g) - part(g < 0, -g)


# log of "no term": far below any log-magnitude yet finite after subtracting y
_TINY = {"float64": -1e306, "float32": -1e37, "float16": -1e4, "bfloat16": -1e37}


def _scan_input(x, dim: int, op: str):
    """(x as at least 1-d, the wrapped dim, whether x was 0-d): a 0-d input scans as a
    one-element vector and its result is 0-d again, as PyTorch's."""
    x = ensure_tensor(x, op)
    if x.ndim == 0:
        _wrap_dim(dim, 1, op)
        return x.reshape(1), 0, True
    return x, _wrap_dim(dim, x.ndim, op), False


def cumprod(x, dim: int, *, dtype=None) -> Tensor:
    """Running product along `dim`; bools and ints give int64."""
    x = ensure_tensor(x, "cumprod")
    if dtype is not None:
        x = x.to(dtype)
    y, d, scalar = _scan_input(x, dim, "cumprod")
    out = apply(Cumprod, (y,), {"dim": d})
    return out.reshape(()) if scalar else out


def _cumext(x, dim: int, largest: bool, op: str):
    from .reduce import values_indices

    y, d, scalar = _scan_input(x, dim, op)
    v, i = apply(CumExtreme, (y,), {"dim": d, "largest": largest})
    if scalar:
        v, i = v.reshape(()), i.reshape(())
    return values_indices(v, i)


def cummax(x, dim: int):
    """(values, indices): the running maximum along `dim` and where it was taken (the
    latest of equal values; NaN propagates)."""
    return _cumext(x, dim, True, "cummax")


def cummin(x, dim: int):
    """(values, indices): the running minimum along `dim` and where it was taken (the
    latest of equal values; NaN propagates)."""
    return _cumext(x, dim, False, "cummin")


def logcumsumexp(x, dim: int) -> Tensor:
    """Running log(sum(exp(x))) along `dim`, without overflow (floating point only)."""
    x = ensure_tensor(x, "logcumsumexp")
    if not x.dtype.is_floating_point:
        raise TypeError(f"logcumsumexp: input must be floating point, got {x.dtype.name}")
    y, d, scalar = _scan_input(x, dim, "logcumsumexp")
    out = apply(LogCumSumExp, (y,), {"dim": d})
    return out.reshape(()) if scalar else out


from .elementwise import where  # noqa: E402

_METHODS = {"cumprod": cumprod, "cummax": cummax, "cummin": cummin,
            "logcumsumexp": logcumsumexp}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)

__all__ = list(_METHODS)
