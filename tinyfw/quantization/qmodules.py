"""Quantized modules: int8 weights, uint8 activations (`QTensor`), the int8 primitives
of the backend (``qlinear``, ``qconv2d``, ...).  `convert` builds them from observed
float modules (``from_float``); their buffers (int8 weights, float32 scales, int32 zero
points) are the state dict, so a quantized model saves at about a quarter of the size.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..creation import from_numpy
from ..dispatch import get_backend
from ..tensor import Tensor
from .qtensor import QTensor, _host

__all__ = ["QuantStub", "DeQuantStub", "QuantWrapper", "Quantize", "DeQuantize",
           "QuantizedLinear", "QuantizedConv2d", "QuantizedReLU", "QuantizedMaxPool2d",
           "QuantizedAvgPool2d", "FloatFunctional", "QFunctional", "DynamicQuantizedLinear",
           "quantize_weight"]


class QuantStub(nn.Module):
    """Marks where float values enter the quantized region (identity until convert)."""

    def forward(self, x):
        return x


class DeQuantStub(nn.Module):
    """Marks where the quantized region ends (identity until convert)."""

    def forward(self, x):
        return x


class QuantWrapper(nn.Module):
    """``dequant(module(quant(x)))``: a whole model quantized between its input and output."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.quant, self.module, self.dequant = QuantStub(), module, DeQuantStub()

    def forward(self, x):
        return self.dequant(self.module(self.quant(x)))


def _qparams_of(mod: nn.Module) -> tuple:
    obs = getattr(mod, "activation_post_process", None)
    if obs is None:
        raise RuntimeError(f"convert: {type(mod).__name__} has no observer; prepare() the "
                           "model (with a qconfig) and calibrate it first")
    scale, zp = obs.calculate_qparams()
    return float(scale), int(zp)


class _QOut(nn.Module):
    """A quantized module with an output scale and zero point (buffers)."""

    def _set_out(self, scale: float, zero_point: int) -> None:
        # one float64 pair (exact for a float32 scale and an integer zero point): a
        # tensor per number would cost a header entry each in the saved file
        self.register_buffer("output_qparams", from_numpy(
            np.array([np.float32(scale), zero_point], np.float64)))

    @property
    def out_qparams(self) -> tuple:
        """(scale, zero point) of the output codes."""
        s, z = self.output_qparams.tolist()
        return float(np.float32(s)), int(z)


class Quantize(_QOut):
    """float Tensor -> QTensor (uint8, per tensor)."""

    def __init__(self, scale: float = 1.0, zero_point: int = 0):
        super().__init__()
        self._set_out(scale, zero_point)

    @classmethod
    def from_float(cls, mod: nn.Module) -> "Quantize":
        return cls(*_qparams_of(mod))

    def forward(self, x: Tensor) -> QTensor:
        return QTensor.quantize(x, *self.out_qparams)

    def extra_repr(self) -> str:
        return "scale={}, zero_point={}".format(*self.out_qparams)


class DeQuantize(nn.Module):
    """QTensor -> float32 Tensor."""

    def forward(self, x: QTensor) -> Tensor:
        return x.dequantize()


def quantize_weight(w: Tensor, observer: nn.Module) -> tuple:
    """(int8 codes, scales) of a float weight, per output channel by `observer`."""
    observer(w.detach())
    scale, zp = observer.calculate_qparams()
    scale = np.asarray(scale, np.float32).reshape(-1)
    zp = np.asarray(zp, np.int32).reshape(-1)
    if np.any(zp != 0):
        raise ValueError("quantize_weight: int8 kernels take symmetric weights (zero point 0); "
                         "use a symmetric int8 weight observer")
    codes = get_backend().quantize_per_channel(_host(w), scale, zp, 0, "int8")
    return codes, scale


class _QWeighted(_QOut):
    relu = False

    def _set_weight(self, codes: np.ndarray, scale: np.ndarray, bias) -> None:
        # the per-channel constants of the epilogue in one float32 (2, out) buffer: row 0
        # the weight scales, row 1 the bias (zeros and unused without one); a buffer per
        # row would cost a header entry each in the saved file
        self.register_buffer("weight", from_numpy(np.ascontiguousarray(codes)))
        rows = np.zeros((2, codes.shape[0]), np.float32)
        rows[0] = scale
        self.has_bias = bias is not None
        if bias is not None:
            rows[1] = _host(bias)
        self.register_buffer("channel_params", from_numpy(rows))

    def _args(self) -> tuple:
        rows = self.channel_params.numpy()
        return self.weight.numpy(), rows[0], rows[1] if self.has_bias else None


def _float_parts(mod: nn.Module) -> tuple:
    """(the float Conv2d/Linear, relu?) of a plain or fused (float or QAT) module."""
    from .qat import QATModule

    if isinstance(mod, QATModule):
        return mod.folded(), mod.relu
    if isinstance(mod, nn.Sequential):  # ConvReLU2d / LinearReLU
        return mod[0], True
    return mod, False


class QuantizedLinear(_QWeighted):
    """y = qlinear(x, W): uint8 in, uint8 out (``relu`` fused in the epilogue)."""

    def __init__(self, in_features: int, out_features: int, relu: bool = False,
                 bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.relu = in_features, out_features, relu
        self._set_weight(np.zeros((out_features, in_features), np.int8),
                         np.ones(out_features, np.float32),
                         np.zeros(out_features, np.float32) if bias else None)
        self._set_out(1.0, 0)

    @classmethod
    def from_float(cls, mod: nn.Module) -> "QuantizedLinear":
        lin, relu = _float_parts(mod)
        q = cls(lin.in_features, lin.out_features, relu, lin.bias is not None)
        q._set_weight(*quantize_weight(lin.weight, mod.qconfig.weight()), lin.bias)
        q._set_out(*_qparams_of(mod))
        return q

    def forward(self, x: QTensor) -> QTensor:
        w, ws, b = self._args()
        s, z = self.out_qparams
        codes = x.int_repr.reshape(-1, x.shape[-1])
        y = get_backend().qlinear(codes, x.scale, x.zero_point, w, ws, b, s, z, self.relu)
        return QTensor(y.reshape(x.shape[:-1] + (self.out_features,)), s, z)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"relu={self.relu}, scale={self.out_qparams[0]:.4g}, "
                f"zero_point={self.out_qparams[1]}")


class QuantizedConv2d(_QWeighted):
    """qconv2d: uint8 (N, C, H, W) in, uint8 out (``relu`` fused in the epilogue)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, relu: bool = False, bias: bool = True):
        super().__init__()
        from ..nn.modules.conv import _pair

        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", "QuantizedConv2d")
        self.stride = _pair(stride, "stride", "QuantizedConv2d")
        self.padding = _pair(padding, "padding", "QuantizedConv2d")
        self.dilation = _pair(dilation, "dilation", "QuantizedConv2d")
        self.relu = relu
        self._set_weight(np.zeros((out_channels, in_channels // groups) + self.kernel_size,
                                  np.int8), np.ones(out_channels, np.float32),
                         np.zeros(out_channels, np.float32) if bias else None)
        self._set_out(1.0, 0)

    @classmethod
    def from_float(cls, mod: nn.Module) -> "QuantizedConv2d":
        conv, relu = _float_parts(mod)
        if isinstance(conv.padding, str):
            raise ValueError("QuantizedConv2d: string padding is not supported; give numbers")
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, relu, conv.bias is not None)
        q._set_weight(*quantize_weight(conv.weight, mod.qconfig.weight()), conv.bias)
        q._set_out(*_qparams_of(mod))
        return q

    def forward(self, x: QTensor) -> QTensor:
        w, ws, b = self._args()
        s, z = self.out_qparams
        y = get_backend().qconv2d(x.int_repr, x.scale, x.zero_point, w, ws, b, self.stride,
                                  self.padding, self.dilation, self.groups, s, z, self.relu)
        return QTensor(y, s, z)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, relu={self.relu}, "
                f"scale={self.out_qparams[0]:.4g}, zero_point={self.out_qparams[1]}")


class QuantizedReLU(nn.Module):
    """max(x, 0) on codes: max(code, zero_point), same qparams."""

    def forward(self, x: QTensor) -> QTensor:
        zp = np.array(x.zero_point, x.int_repr.dtype)
        return QTensor(np.maximum(x.int_repr, zp), x.scale, x.zero_point)


class QuantizedMaxPool2d(nn.Module):
    """Max pooling on the codes (same qparams)."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        from ..nn.modules.conv import _pair

        self.kernel_size = _pair(pool.kernel_size, "kernel_size", "MaxPool2d")
        st = pool.stride if pool.stride is not None else pool.kernel_size
        self.stride = _pair(st, "stride", "MaxPool2d")
        self.padding = _pair(pool.padding, "padding", "MaxPool2d")
        self.dilation = _pair(pool.dilation, "dilation", "MaxPool2d")
        self.ceil_mode = pool.ceil_mode

    def forward(self, x: QTensor) -> QTensor:
        y = get_backend().qmax_pool2d(x.int_repr, self.kernel_size, self.stride, self.padding,
                                      self.dilation, self.ceil_mode)
        return QTensor(y, x.scale, x.zero_point)


class QuantizedAvgPool2d(nn.Module):
    """Average pooling in the input's qparams."""

    def __init__(self, pool: nn.AvgPool2d):
        super().__init__()
        from ..nn.modules.conv import _pair

        if pool.divisor_override is not None:
            raise ValueError("QuantizedAvgPool2d: divisor_override is not supported")
        self.kernel_size = _pair(pool.kernel_size, "kernel_size", "AvgPool2d")
        self.stride = _pair(pool.stride, "stride", "AvgPool2d")
        self.padding = _pair(pool.padding, "padding", "AvgPool2d")
        self.ceil_mode, self.count_include_pad = pool.ceil_mode, pool.count_include_pad

    def forward(self, x: QTensor) -> QTensor:
        y = get_backend().qavg_pool2d(x.int_repr, x.zero_point, self.kernel_size, self.stride,
                                      self.padding, self.ceil_mode, self.count_include_pad)
        return QTensor(y, x.scale, x.zero_point)


class FloatFunctional(nn.Module):
    """Float ``add``/``add_relu`` whose output an observer watches (a residual sum in a
    model to be quantized calls ``self.skip.add(a, b)`` instead of ``a + b``)."""

    def forward(self, x):
        raise RuntimeError("FloatFunctional: call .add or .add_relu, not the module")

    def _observe(self, y):
        obs = getattr(self, "activation_post_process", None)
        return obs(y) if obs is not None else y

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        return self._observe(a + b)

    def add_relu(self, a: Tensor, b: Tensor) -> Tensor:
        return self._observe((a + b).relu())


class QFunctional(_QOut):
    """The quantized FloatFunctional: ``qadd`` into its own output qparams."""

    def __init__(self, scale: float = 1.0, zero_point: int = 0):
        super().__init__()
        self._set_out(scale, zero_point)

    @classmethod
    def from_float(cls, mod: FloatFunctional) -> "QFunctional":
        return cls(*_qparams_of(mod))

    def _add(self, a: QTensor, b: QTensor, relu: bool) -> QTensor:
        s, z = self.out_qparams
        y = get_backend().qadd(a.int_repr, a.scale, a.zero_point, b.int_repr, b.scale,
                               b.zero_point, s, z, relu)
        return QTensor(y, s, z)

    def add(self, a: QTensor, b: QTensor) -> QTensor:
        return self._add(a, b, False)

    def add_relu(self, a: QTensor, b: QTensor) -> QTensor:
        return self._add(a, b, True)


class DynamicQuantizedLinear(_QWeighted):
    """Dynamic quantization: int8 weights stored, each input batch quantized to uint8
    with its own min/max at run time, float32 output (qlinear without out_scale)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._set_weight(np.zeros((out_features, in_features), np.int8),
                         np.ones(out_features, np.float32),
                         np.zeros(out_features, np.float32) if bias else None)

    @classmethod
    def from_float(cls, mod: nn.Linear, weight_observer=None) -> "DynamicQuantizedLinear":
        from .observer import MinMaxObserver, PerChannelMinMaxObserver

        q = cls(mod.in_features, mod.out_features, mod.bias is not None)
        q._set_weight(*quantize_weight(mod.weight, (weight_observer or
                                                    PerChannelMinMaxObserver)()), mod.bias)
        return q

    def forward(self, x: Tensor) -> Tensor:
        from .observer import MinMaxObserver

        a = _host(x)
        obs = MinMaxObserver()
        obs(a)
        s, z = obs.calculate_qparams()
        B = get_backend()
        codes = B.quantize_per_tensor(a.reshape(-1, a.shape[-1]), float(s), int(z), "uint8")
        w, ws, b = self._args()
        y = B.qlinear(codes, float(s), int(z), w, ws, b, None, 0, False)
        return from_numpy(np.ascontiguousarray(y.reshape(a.shape[:-1] + (self.out_features,))))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dynamic"
