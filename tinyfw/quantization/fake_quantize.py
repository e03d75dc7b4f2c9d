"""Fake quantization for quantization-aware training, and `QConfig`.

`FakeQuantize` rounds its input to the values the quantized model will see
(dequantize(quantize(x)), with the rounding of the int8 primitives) while training runs
in float; its gradient is the straight-through estimator: the incoming gradient passes
unchanged where the value was inside the code range, and is zero where it was clamped.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..autograd.function import Function
from ..creation import from_numpy
from ..dispatch import apply
from ..nn import Module
from ..tensor import Tensor
from .observer import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                       PerChannelMinMaxObserver)

__all__ = ["FakeQuantizeFunction", "fake_quantize", "FakeQuantize", "QConfig",
           "default_qconfig", "default_qat_qconfig", "histogram_qconfig",
           "default_dynamic_qconfig"]


class FakeQuantizeFunction(Function):
    """Inputs (x, scales, zero_points); attrs axis (None: per tensor), qmin, qmax.  The
    backend's ``fake_quantize`` returns the rounded values and the in-range mask that the
    backward multiplies the gradient by (straight-through estimator)."""

    autocast = "float32"
    save_aux = False

    @staticmethod
    def forward(ctx, B, x, scales, zero_points, axis, qmin, qmax):
        y, mask = B.fake_quantize(x, scales, zero_points, axis, qmin, qmax)
        ctx.mask = mask
        return y

    def backward(self, g):
        return g * Tensor._make(self.mask).to(g.dtype), None, None


def fake_quantize(x: Tensor, scale, zero_point, qmin: int, qmax: int,
                  axis: int | None = None) -> Tensor:
    """dequantize(quantize(x)) with a straight-through gradient; scale/zero_point are
    numbers (per tensor) or 1-d arrays along `axis`."""
    s = from_numpy(np.asarray(scale, np.float32).reshape(-1))
    z = from_numpy(np.asarray(zero_point, np.int32).reshape(-1))
    return apply(FakeQuantizeFunction, (x, s, z), {"axis": axis, "qmin": qmin, "qmax": qmax})


class FakeQuantize(Module):
    """An observer (``observer()``) followed by fake quantization with its current
    qparams.  ``enable_observer``/``disable_observer`` and
    ``enable_fake_quant``/``disable_fake_quant`` switch the two parts (a common QAT
    schedule freezes the observers for the last epochs)."""

    def __init__(self, observer: Callable[[], Module] = MovingAverageMinMaxObserver):
        super().__init__()
        self.activation_observer = observer()
        self.observer_enabled = True
        self.fake_quant_enabled = True

    @property
    def qdtype(self) -> str:
        return self.activation_observer.qdtype

    def calculate_qparams(self) -> tuple:
        """The observer's (scale, zero point)."""
        return self.activation_observer.calculate_qparams()

    def enable_observer(self, on: bool = True) -> "FakeQuantize":
        self.observer_enabled = on
        return self

    def disable_observer(self) -> "FakeQuantize":
        return self.enable_observer(False)

    def enable_fake_quant(self, on: bool = True) -> "FakeQuantize":
        self.fake_quant_enabled = on
        return self

    def disable_fake_quant(self) -> "FakeQuantize":
        return self.enable_fake_quant(False)

    def forward(self, x: Tensor) -> Tensor:
        """Observe (when enabled), then fake-quantize (when enabled)."""
        obs = self.activation_observer
        if self.observer_enabled:
            obs(x.detach())
        if not self.fake_quant_enabled:
            return x
        scale, zp = obs.calculate_qparams()
        axis = getattr(obs, "ch_axis", None)
        return fake_quantize(x, scale, zp, obs.quant_min, obs.quant_max, axis)


class QConfig(NamedTuple):
    """How to quantize: ``activation`` and ``weight`` are factories (no-argument
    callables) of observers or FakeQuantize modules."""

    activation: Callable[[], Module]
    weight: Callable[[], Module]


def _partial(cls, **kw) -> Callable[[], Module]:
    def make():
        return cls(**kw)
    make.__name__ = f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
    return make


#: post-training static quantization: uint8 activations (min/max), int8 per-channel weights
default_qconfig = QConfig(_partial(MinMaxObserver), _partial(PerChannelMinMaxObserver))
#: the same with percentile-clipped activation ranges
histogram_qconfig = QConfig(_partial(HistogramObserver), _partial(PerChannelMinMaxObserver))
#: quantization-aware training: moving-average activation ranges, per-channel weights
default_qat_qconfig = QConfig(
    _partial(FakeQuantize, observer=_partial(MovingAverageMinMaxObserver)),
    _partial(FakeQuantize, observer=_partial(PerChannelMinMaxObserver)))
#: dynamic quantization: only the weights are quantized ahead of time
default_dynamic_qconfig = QConfig(_partial(MinMaxObserver), _partial(PerChannelMinMaxObserver))
