"""Counting ops (issue 16): bincount, histc and histogram, with PyTorch's bins, output
dtypes and errors.  None has a gradient (PyTorch's backward of bincount raises, histc
and histogram have none).

Output sizes that depend on the values (bincount's length, histc's and histogram's
range when not given) are read from the data first (one small host read, as PyTorch
does); on the meta device, which holds no values, bincount is refused and the ranges are
not needed to know the shapes.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ..backend import host
from ..backend.host_intops import linspace_edges
from ..tensor import register_method
from ._opmeta import per_input
from ._util import Tensor, apply
from .index import index_bounds

__all__ = ["bincount", "histc", "histogram"]


class Bincount(Function):
    """Counts (or summed weights) of the values 0 .. length-1; no gradient."""
    autocast = None
    differentiable = False
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, *weights, length):
        return B.bincount(x, weights[0] if weights else None, length)


class Histc(Function):
    """Equal-width bin counts over [lo, hi] in the input's dtype; no gradient."""
    autocast = None
    differentiable = False
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, bins, lo, hi):
        return B.histc(x, bins, lo, hi)


class Histogram(Function):
    """Counts (or summed weights) between consecutive bin edges; no gradient."""
    autocast = None
    differentiable = False
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, edges, *weight, density):
        return B.histogram(x, edges, weight[0] if weight else None, density)


def _tensor(x, op: str, arg: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {arg} must be a Tensor, got {type(x).__name__}")
    return x


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in the 1-d non-negative integer tensor
    `input` (int64), or the sum of `weights` at its positions (float32 weights give
    float32, any other dtype float64); at least `minlength` bins."""
    x = _tensor(input, "bincount")
    if x.ndim != 1 or x.dtype.is_floating_point or x.dtype is _dt.bool_:
        raise RuntimeError(f"bincount: expected a 1-d tensor of non-negative integers, got "
                           f"{x.ndim}-d {x.dtype.name}")
    if not host.is_integer(minlength) or minlength < 0:
        raise RuntimeError(f"bincount: minlength must be a non-negative int, got {minlength!r}")
    ins = (x.detach(),)
    if weights is not None:
        w = _tensor(weights, "bincount", "weights")
        if w.shape != x.shape:
            raise RuntimeError(f"bincount: weights must have the input's shape {tuple(x.shape)}, "
                               f"got {tuple(w.shape)}")
        ins += (w.detach(),)
    if x.is_meta:
        raise RuntimeError("meta: bincount's output size depends on the input's values, "
                           "which a meta tensor does not have")
    bounds = index_bounds(x)
    length = int(minlength)
    if bounds is not None:
        if bounds[0] < 0:
            raise RuntimeError(f"bincount: the input holds a negative value ({bounds[0]})")
        length = max(length, bounds[1] + 1)
    return apply(Bincount, ins, {"length": length})


def _data_range(x: Tensor, op: str) -> tuple:
    """(min, max) of a float tensor as Python floats; (0, 0) when empty or meta."""
    if x.numel() == 0 or x.is_meta:
        return 0.0, 0.0
    return float(x.detach().min().item()), float(x.detach().max().item())


def _check_range(lo: float, hi: float, op: str) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"{op}: range of [{lo}, {hi}] is not finite")
    if lo > hi:
        raise RuntimeError(f"{op}: max must be larger than min (got min={lo}, max={hi})")


def _float_input(x, op: str) -> Tensor:
    x = _tensor(x, op)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype.name}")
    return x


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Counts of input's elements in `bins` equal-width bins over [min, max] (the data's
    range when min == max == 0; widened by 1 each way if still empty), in input's dtype.
    Values outside the range and NaN are not counted; max falls in the last bin."""
    x = _float_input(input, "histc")
    if not host.is_integer(bins) or bins <= 0:
        raise RuntimeError(f"histc: bins must be a positive int, got {bins!r}")
    lo, hi = float(min), float(max)
    if lo == hi:
        lo, hi = _data_range(x, "histc")
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    _check_range(lo, hi, "histc")
    return apply(Histc, (x.detach(),), {"bins": int(bins), "lo": lo, "hi": hi})


def histogram(input: Tensor, bins, *, range=None, weight: Tensor | None = None,  # noqa: A002
              density: bool = False):
    """(hist, bin_edges): counts (or summed `weight`) of input's elements in the bins.
    `bins` is a count of equal-width bins over `range` (default the data's min and max,
    widened by 0.5 each way when equal, [0, 1] without data) or a 1-d tensor of increasing edges.  Bins are
    [e_i, e_i+1), the last one closed; values outside and NaN are not counted.
    `density` divides by the total and by each bin's width."""
    from ..creation import tensor as _tensor_of

    x = _float_input(input, "histogram")
    if x.dtype not in (_dt.float32, _dt.float64):  # as PyTorch's CPU histogram
        raise TypeError(f"histogram: expected a float32 or float64 input, got {x.dtype.name}")
    if isinstance(bins, Tensor):
        if bins.ndim != 1 or bins.numel() < 1:
            raise RuntimeError(f"histogram: bins must be a 1-d tensor of at least one edge, "
                               f"got shape {tuple(bins.shape)}")
        if bins.dtype is not x.dtype:
            raise RuntimeError(f"histogram: bins must have the input's dtype {x.dtype.name}, "
                               f"got {bins.dtype.name}")
        edges = bins.detach()
    else:
        if not host.is_integer(bins) or bins <= 0:
            raise RuntimeError(f"histogram: bins must be > 0, got {bins!r}")
        if range is not None:
            if len(range) != 2:
                raise RuntimeError(f"histogram: range must be (min, max), got {range!r}")
            lo, hi = float(range[0]), float(range[1])
        elif x.numel() == 0:
            lo, hi = 0.0, 1.0  # PyTorch's bins for no data
        else:
            lo, hi = _data_range(x, "histogram")
        _check_range(lo, hi, "histogram")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = _tensor_of(linspace_edges(lo, hi, int(bins), x.dtype), device=x.device)
    ins = (x.detach(), edges)
    if weight is not None:
        w = _tensor(weight, "histogram", "weight")
        if w.shape != x.shape or w.dtype is not x.dtype:
            raise RuntimeError(f"histogram: weight must have the input's shape {tuple(x.shape)} "
                               f"and dtype {x.dtype.name}, got {tuple(w.shape)} {w.dtype.name}")
        ins += (w.detach(),)
    hist = apply(Histogram, ins, {"density": bool(density)})
    return _HistogramResult(hist, edges)


class _HistogramResult(tuple):
    """(hist, bin_edges), also by name as PyTorch's return type."""

    def __new__(cls, hist: Tensor, bin_edges: Tensor):
        return super().__new__(cls, (hist, bin_edges))

    hist = property(lambda self: self[0])
    bin_edges = property(lambda self: self[1])


for _name in __all__:
    register_method(_name, globals()[_name])
del _name
