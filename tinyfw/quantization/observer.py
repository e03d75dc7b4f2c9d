"""Observers: modules that watch the values flowing through them and choose a scale and
zero point (``calculate_qparams``), with PyTorch's formulas (tests compare them with
``torch.ao.quantization``'s observers):

- affine: scale = (max(hi, 0) - min(lo, 0)) / (qmax - qmin), zero_point = qmin -
  rint(min(lo, 0) / scale) clamped to the range;
- symmetric: scale = max(-min(lo, 0), max(hi, 0)) / ((qmax - qmin) / 2), zero_point 0
  (int8) or 128 (uint8);

all in float32, scale at least float32's epsilon.  An observer returns its input unchanged.
"""
from __future__ import annotations

import numpy as np

from ..nn import Module
from .qtensor import _host

_EPS = np.float32(np.finfo(np.float32).eps)
__all__ = ["ObserverBase", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PerChannelMinMaxObserver", "HistogramObserver"]


def _range(qdtype: str, reduce_range: bool) -> tuple:
    lo, hi = {"uint8": (0, 255), "int8": (-128, 127)}[qdtype]
    return (lo // 2, hi // 2) if reduce_range else (lo, hi)


class ObserverBase(Module):
    """Common parts: the code dtype (``"uint8"`` or ``"int8"``), the scheme (``"affine"``
    or ``"symmetric"``), ``reduce_range`` (7-bit codes, for AVX2 kernels whose 16-bit
    pair sums would saturate), and the qparams formula."""

    def __init__(self, qdtype: str = "uint8", qscheme: str = "affine",
                 reduce_range: bool = False):
        super().__init__()
        if qdtype not in ("uint8", "int8"):
            raise ValueError(f"{type(self).__name__}: qdtype must be 'uint8' or 'int8', "
                             f"got {qdtype!r}")
        if qscheme not in ("affine", "symmetric"):
            raise ValueError(f"{type(self).__name__}: qscheme must be 'affine' or "
                             f"'symmetric', got {qscheme!r}")
        self.qdtype, self.qscheme, self.reduce_range = qdtype, qscheme, reduce_range
        self.quant_min, self.quant_max = _range(qdtype, reduce_range)
        self.min_val = self.max_val = None

    def _qparams(self, lo, hi) -> tuple:
        if lo is None:
            raise RuntimeError(f"{type(self).__name__}: no data observed yet; run calibration "
                               "data through the prepared model first")
        qmin, qmax = self.quant_min, self.quant_max
        lo = np.minimum(np.asarray(lo, np.float32), np.float32(0))
        hi = np.maximum(np.asarray(hi, np.float32), np.float32(0))
        if self.qscheme == "symmetric":
            hi = np.maximum(-lo, hi)
            scale = np.maximum(hi / np.float32((qmax - qmin) / 2), _EPS).astype(np.float32)
            zp = np.full(scale.shape, 0 if self.qdtype == "int8" else (qmin + qmax + 1) // 2,
                         np.int32)
        else:
            scale = np.maximum((hi - lo) / np.float32(qmax - qmin), _EPS).astype(np.float32)
            zp = np.clip(qmin - np.rint(lo / scale).astype(np.int64), qmin, qmax).astype(np.int32)
        return scale, zp

    def calculate_qparams(self) -> tuple:
        """(scale float32 array, zero point int32 array): 0-d per tensor, 1-d per channel."""
        return self._qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"qdtype={self.qdtype}, qscheme={self.qscheme}, min={self.min_val}, max={self.max_val}"


class MinMaxObserver(ObserverBase):
    """The running minimum and maximum of everything seen."""

    def forward(self, x):
        """Record x's range; return x."""
        a = _host(x)
        if a.size:
            lo, hi = np.float32(a.min()), np.float32(a.max())
            self.min_val = lo if self.min_val is None else min(self.min_val, lo)
            self.max_val = hi if self.max_val is None else max(self.max_val, hi)
        return x


class MovingAverageMinMaxObserver(ObserverBase):
    """An exponential moving average of each batch's min and max (the first batch's
    values to start): ``m += averaging_constant * (batch - m)`` in float32."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.averaging_constant = averaging_constant

    def forward(self, x):
        """Fold x's range into the averages; return x."""
        a = _host(x)
        if a.size:
            lo, hi = np.float32(a.min()), np.float32(a.max())
            if self.min_val is None:
                self.min_val, self.max_val = lo, hi
            else:
                c = np.float32(self.averaging_constant)
                self.min_val = np.float32(self.min_val + c * (lo - self.min_val))
                self.max_val = np.float32(self.max_val + c * (hi - self.max_val))
        return x


class PerChannelMinMaxObserver(ObserverBase):
    """Min and max per channel along ``ch_axis`` (weights: int8, symmetric)."""

    def __init__(self, ch_axis: int = 0, qdtype: str = "int8", qscheme: str = "symmetric",
                 reduce_range: bool = False):
        super().__init__(qdtype, qscheme, reduce_range)
        self.ch_axis = ch_axis

    def forward(self, x):
        """Record each channel's range; return x."""
        a = np.moveaxis(_host(x), self.ch_axis, 0).reshape(_host(x).shape[self.ch_axis], -1)
        if a.shape[1]:
            lo, hi = a.min(axis=1), a.max(axis=1)
            self.min_val = lo if self.min_val is None else np.minimum(self.min_val, lo)
            self.max_val = hi if self.max_val is None else np.maximum(self.max_val, hi)
        return x


class HistogramObserver(ObserverBase):
    """A histogram of the values seen (``bins`` bins over the range so far, re-binned when
    the range grows); the range it reports clips the tails at ``percentile``: the
    (100 - percentile)% and percentile% quantiles.  An outlier then costs a clipped value
    instead of coarser steps for all the others.  (PyTorch's HistogramObserver instead
    searches the range that minimises the L2 quantization error; this one is simpler.)"""

    def __init__(self, bins: int = 2048, percentile: float = 99.99, **kwargs):
        super().__init__(**kwargs)
        if not 50 < percentile <= 100:
            raise ValueError(f"HistogramObserver: percentile must be in (50, 100], got {percentile}")
        self.bins, self.percentile = bins, percentile
        self.hist = None

    def forward(self, x):
        """Add x's values to the histogram; return x."""
        a = _host(x).reshape(-1)
        if not a.size:
            return x
        lo, hi = float(a.min()), float(a.max())
        if self.hist is not None:
            old_edges = np.linspace(self.min_val, self.max_val, self.bins + 1)
            lo, hi = min(lo, float(self.min_val)), max(hi, float(self.max_val))
        if hi == lo:
            hi = lo + 1e-8
        counts, _ = np.histogram(a, self.bins, (lo, hi))
        counts = counts.astype(np.float64)
        if self.hist is not None:  # old counts move to the new bins of their centres
            centres = (old_edges[:-1] + old_edges[1:]) / 2
            idx = np.clip(((centres - lo) / (hi - lo) * self.bins).astype(np.int64), 0,
                          self.bins - 1)
            np.add.at(counts, idx, self.hist)
        self.hist, self.min_val, self.max_val = counts, np.float32(lo), np.float32(hi)
        return x

    def calculate_qparams(self) -> tuple:
        """The qparams of the clipped range."""
        if self.hist is None:
            return self._qparams(None, None)
        cdf = np.cumsum(self.hist) / self.hist.sum()
        edges = np.linspace(float(self.min_val), float(self.max_val), self.bins + 1)
        tail = 1 - self.percentile / 100
        lo = edges[np.searchsorted(cdf, tail, side="right")] if tail > 0 else edges[0]
        hi = edges[min(np.searchsorted(cdf, 1 - tail, side="left") + 1, self.bins)]
        return self._qparams(np.float32(lo), np.float32(hi))
