"""Lab 8: training in half precision with a loss scaler, and int8 inference.

Part 1: float16 gradients underflow to 0 below ~6e-8; multiplying the loss by a large
scale S moves them into range, and dividing the float32 gradients by S before the step
undoes it.  When S is too large a gradient overflows to inf: the step is skipped and S
shrinks; after `growth_interval` clean steps S grows.  tinyfw.amp.GradScaler (PyTorch's
rules) is the reference.

Part 2: int8 quantization maps a float range [lo, hi] onto integers [qmin, qmax] with a
scale and a zero point; a Linear layer then multiplies integers and accumulates in int32.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 8 --src <this folder>
"""
from __future__ import annotations

import math

import numpy as np

import tinyfw


class LossScaler:
    """Dynamic loss scaling for one optimizer's parameters."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000):
        self.scale_value = float(init_scale)
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self.tracker = 0  # clean steps since the last change of scale

    def scale(self, loss):
        """loss * the current scale (given)."""
        return loss * self.scale_value

    def unscale_(self, params) -> bool:
        """TASK 8.1 — divide every parameter's .grad by the scale, in place, and return
        True when any gradient holds an inf or NaN."""
        raise NotImplementedError("TODO 8.1: unscale_")

    def step(self, optimizer, params) -> bool:
        """TASK 8.1 — unscale, then run optimizer.step() unless a gradient was not finite,
        then update the scale; returns whether the optimizer stepped."""
        raise NotImplementedError("TODO 8.1: step")

    def update(self, found_inf: bool) -> None:
        """TASK 8.2 — a non-finite gradient: scale *= backoff_factor, restart the count;
        else count the clean step, and at growth_interval clean steps in a row,
        scale *= growth_factor and restart the count."""
        raise NotImplementedError("TODO 8.2: update")


def qparams(lo: float, hi: float, qmin: int = 0, qmax: int = 255) -> tuple:
    """TASK 8.3 — (scale, zero_point) mapping [min(lo, 0), max(hi, 0)] onto [qmin, qmax]:
    scale = (hi - lo) / (qmax - qmin) (1.0 for an all-zero range), zero_point =
    qmin - round(lo / scale) clamped to [qmin, qmax]; 0.0 is then exactly representable."""
    raise NotImplementedError("TODO 8.3: qparams")


def quantize(x: np.ndarray, scale: float, zero_point: int, qmin: int = 0,
             qmax: int = 255) -> np.ndarray:
    """TASK 8.3 — clamp(round(x / scale) + zero_point, qmin, qmax) as int32 (round half to
    even, numpy's rint)."""
    raise NotImplementedError("TODO 8.3: quantize")


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """TASK 8.3 — (q - zero_point) * scale as float32."""
    raise NotImplementedError("TODO 8.3: dequantize")


class QuantizedLinear:
    """y = x W^T + b with int8 weights (symmetric, one scale per output row) and uint8
    activations (affine, one scale and zero point from calibration)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None):
        """TASK 8.4 — quantize the (out, in) float weight: w_scale[o] = max|W[o]| / 127
        (1.0 for a zero row), qweight = clamp(rint(W / w_scale[o]), -127, 127) int8."""
        raise NotImplementedError("TODO 8.4: __init__")

    def calibrate(self, batches: list) -> None:
        """TASK 8.4 — set x_scale / x_zero_point (uint8) from the min and max over all the
        calibration batches."""
        raise NotImplementedError("TODO 8.4: calibrate")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """TASK 8.4 — quantize x, accumulate (qx - zero_point) @ qweight^T in int32, then
        scale each output column by x_scale * w_scale[o] and add the bias (float64)."""
        raise NotImplementedError("TODO 8.4: __call__")
