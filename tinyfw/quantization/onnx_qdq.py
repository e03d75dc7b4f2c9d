"""ONNX export of a converted (int8) model in QDQ form: each quantized activation is a
uint8 tensor between a QuantizeLinear and a DequantizeLinear, each int8 weight an int8
initializer behind a per-channel DequantizeLinear, and the layers float ONNX operators
in between (Gemm, Conv, Relu, MaxPool, AveragePool).  onnxruntime recognises the pattern
and may run it with its own int8 kernels.  ``tinyfw.onnx.export`` sends converted models
here.

A quantized model cannot be traced like a float one: its activations are `QTensor`s
(numpy codes), not Tensors.  So the export walks the modules instead, in the order a
Sequential (or `QuantWrapper`) runs them; models of other shapes (a residual `QFunctional`
add, a custom forward) are refused with the name of what is not supported.

What agrees and how well: max/avg pooling, ReLU and Flatten are exact on codes; a Gemm
or Conv sums dequantized float32 products where tinyfw sums exact int32 products and
scales once (backend/ref_quant.py), so an output code may differ by one where the
value lies within a rounding of a half step (tests/test_quant_onnx.py measures it).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from .qmodules import (DeQuantize, DynamicQuantizedLinear, QFunctional, Quantize,
                       QuantizedAvgPool2d, QuantizedConv2d, QuantizedLinear,
                       QuantizedMaxPool2d, QuantizedReLU, QuantWrapper)

__all__ = ["export_qdq", "is_quantized"]

_QUANTIZED = (Quantize, DeQuantize, QuantizedLinear, QuantizedConv2d, QuantizedReLU,
              QuantizedMaxPool2d, QuantizedAvgPool2d)
_PASS = (nn.Identity, nn.Dropout)


def is_quantized(model) -> bool:
    """Whether `model` holds modules of a converted model (`tinyfw.quantization.convert`)."""
    kinds = _QUANTIZED + (QFunctional, DynamicQuantizedLinear)
    return hasattr(model, "modules") and any(isinstance(m, kinds) for m in model.modules())


def _leaves(m) -> list:
    """The modules `m` runs, in order (Sequential and QuantWrapper only)."""
    if isinstance(m, QuantWrapper):
        return [m.quant] + _leaves(m.module) + [m.dequant]
    if isinstance(m, nn.Sequential):
        return [leaf for child in m._modules.values() if child is not None
                for leaf in _leaves(child)]
    if isinstance(m, _QUANTIZED + _PASS + (nn.Flatten,)):
        return [m]
    raise NotImplementedError(
        f"onnx.export (QDQ): {type(m).__name__} is not supported; a converted model "
        "exports when it is a Sequential/QuantWrapper of Quantize, quantized Linear/Conv2d/"
        "ReLU/MaxPool2d/AvgPool2d, Flatten, Dropout/Identity and DeQuantize")


class _QDQ:
    """The graph being built: the current value's name and, while quantized, its qparams."""

    def __init__(self, b):
        self.b = b
        self.qparams: tuple | None = None  # (scale, zero point) while the value is codes

    def scalar(self, value, dtype) -> str:
        """A 0-d initializer (the builder's `const` makes 0-d arrays 1-d, which per-tensor
        QuantizeLinear accepts but onnxruntime's fused QLinear* operators refuse)."""
        from onnx import numpy_helper

        name = f"qparam_{len(self.b.inits)}"
        self.b.inits.append(numpy_helper.from_array(np.array(value, dtype), name))
        return name

    def qparam_names(self, scale: float, zp: int) -> tuple:
        return self.scalar(scale, np.float32), self.scalar(zp, np.uint8)

    def quantize(self, x: str, scale: float, zp: int) -> str:
        out = self.b.tmp()
        self.b.add("QuantizeLinear", [x, *self.qparam_names(scale, zp)], [out])
        self.qparams = (scale, zp)
        return out

    def dequantize(self, q: str) -> str:
        if self.qparams is None:
            raise NotImplementedError("onnx.export (QDQ): a quantized layer receives float "
                                      "values; the model must start with a Quantize")
        out = self.b.tmp()
        self.b.add("DequantizeLinear", [q, *self.qparam_names(*self.qparams)], [out])
        self.qparams = None
        return out

    def weight(self, m) -> tuple:
        """(dequantized weight, float bias or None) names of a quantized layer."""
        w, ws, bias = m._args()
        w_name, out = self.b.const(w), self.b.tmp()
        self.b.add("DequantizeLinear", [w_name, self.b.const(np.asarray(ws, np.float32)),
                                        self.b.const(np.zeros(w.shape[0], np.int8))],
                   [out], axis=0)
        return out, (self.b.const(np.asarray(bias, np.float32)) if bias is not None else None)


def _layer(g: _QDQ, m, x: str) -> str:
    """The ONNX nodes of one module; returns the output name."""
    b = g.b
    if isinstance(m, Quantize):
        return g.quantize(x, *m.out_qparams)
    if isinstance(m, DeQuantize):
        return g.dequantize(x)
    if isinstance(m, _PASS):
        return x
    if isinstance(m, nn.Flatten):
        if (m.start_dim, m.end_dim) != (1, -1):
            raise NotImplementedError("onnx.export (QDQ): Flatten(start_dim=1, end_dim=-1) only")
        out = b.tmp()
        b.add("Flatten", [x], [out], axis=1)  # on codes or floats alike
        return out
    keep = g.qparams
    xf, y = g.dequantize(x), b.tmp()
    if isinstance(m, (QuantizedLinear, QuantizedConv2d)):
        w, bias = g.weight(m)
        ins = [xf, w] + ([bias] if bias is not None else [])
        if isinstance(m, QuantizedLinear):
            b.add("Gemm", ins, [y], transB=1)
        else:
            ph, pw = m.padding
            b.add("Conv", ins, [y], strides=list(m.stride), pads=[ph, pw, ph, pw],
                  dilations=list(m.dilation), group=m.groups, kernel_shape=list(m.kernel_size))
        if m.relu:
            r = b.tmp()
            b.add("Relu", [y], [r])
            y = r
        return g.quantize(y, *m.out_qparams)
    if isinstance(m, QuantizedReLU):
        b.add("Relu", [xf], [y])
    elif isinstance(m, (QuantizedMaxPool2d, QuantizedAvgPool2d)):
        ph, pw = m.padding
        attrs = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride),
                     pads=[ph, pw, ph, pw], ceil_mode=int(m.ceil_mode))
        if isinstance(m, QuantizedMaxPool2d):
            b.add("MaxPool", [xf], [y], dilations=list(m.dilation), **attrs)
        else:
            b.add("AveragePool", [xf], [y], count_include_pad=int(m.count_include_pad),
                  **attrs)
    return g.quantize(y, *keep)  # same qparams as the input


def export_qdq(model, example_input, path: str, opset_version: int = 17,
               input_name: str = "input_0", output_name: str = "output_0") -> None:
    """Write the converted `model` (float input, float output) as an ONNX QDQ model;
    `example_input` fixes the input shape (see module doc)."""
    import onnx

    from ..autograd.function import no_grad
    from ..onnx import MAX_OPSET, MIN_OPSET, _Builder

    if not MIN_OPSET <= opset_version <= MAX_OPSET:
        raise ValueError(f"onnx.export: opset_version must be in {MIN_OPSET}..{MAX_OPSET}, "
                         f"got {opset_version}")
    leaves = _leaves(model)
    with no_grad():
        y = model(example_input)
    b = _Builder(onnx, opset_version)
    g = _QDQ(b)
    cur = input_name
    for m in leaves:
        cur = _layer(g, m, cur)
    if g.qparams is not None:
        raise NotImplementedError("onnx.export (QDQ): the model ends quantized; end it with "
                                  "a DeQuantize (QuantWrapper does) so that it returns floats")
    b.add("Identity", [cur], [output_name])
    h = onnx.helper
    f32 = onnx.TensorProto.FLOAT
    graph = h.make_graph(b.nodes, "tinyfw_qdq",
                         [h.make_tensor_value_info(input_name, f32, list(example_input.shape))],
                         [h.make_tensor_value_info(output_name, f32, list(y.shape))], b.inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset_version)],
                         producer_name="tinyfw")
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
