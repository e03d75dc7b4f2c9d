"""ONNX export: `tinyfw.onnx.export(model, example_inputs, path, opset_version=17)`.

The model is traced (inference: grad mode off) and cleaned by the jit's DCE, CSE,
constant-folding and simplification passes; every remaining node is translated to ONNX
operators (parameters and constants become initializers).  An op with no translation
raises an error naming it.  Requires the `onnx` package.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .autograd.function import no_grad
from .tensor import Tensor

_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow",
           "Maximum": "Max", "Minimum": "Min", "Eq": "Equal", "Lt": "Less", "Gt": "Greater",
           "Le": "LessOrEqual", "Ge": "GreaterOrEqual", "LogicalAnd": "And",
           "LogicalOr": "Or", "LogicalXor": "Xor"}
_UNARY = {"Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Tanh": "Tanh",
          "Sigmoid": "Sigmoid", "Relu": "Relu", "Erf": "Erf", "Abs": "Abs", "Sin": "Sin",
          "Cos": "Cos", "Reciprocal": "Reciprocal", "Floor": "Floor", "Ceil": "Ceil",
          "Sign": "Sign", "LogicalNot": "Not", "Contiguous": "Identity", "Clone": "Identity"}


class _Builder:
    """Accumulates ONNX nodes and initializers while walking the graph."""

    def __init__(self, onnx_mod) -> None:
        self.onnx = onnx_mod
        self.h = onnx_mod.helper
        self.nodes: list = []
        self.inits: list = []
        self.k = 0

    def const(self, arr: np.ndarray, name: str | None = None) -> str:
        """An initializer holding `arr`; returns its name."""
        from onnx import numpy_helper

        if name is None:
            name = f"const_{self.k}"
            self.k += 1
        a = np.asarray(arr)
        if a.dtype.kind == "V" or str(a.dtype) == "bfloat16":
            a = a.astype(np.float32)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def tmp(self) -> str:
        """A fresh intermediate name."""
        self.k += 1
        return f"t_{self.k}"

    def add(self, op: str, ins: list, outs: list, **attrs) -> None:
        """Append one ONNX node."""
        self.nodes.append(self.h.make_node(op, ins, outs, **attrs))


def _scalar(b: _Builder, x: float, dtype) -> str:
    return b.const(np.array(x, dtype))


def _gelu(b: _Builder, x: str, out: str, dtype, approximate: str) -> None:
    half = _scalar(b, 0.5, dtype)
    one = _scalar(b, 1.0, dtype)
    t1, t2, t3 = b.tmp(), b.tmp(), b.tmp()
    if approximate == "tanh":
        c, k = _scalar(b, 0.044715, dtype), _scalar(b, math.sqrt(2 / math.pi), dtype)
        x3, u, v, w = b.tmp(), b.tmp(), b.tmp(), b.tmp()
        b.add("Mul", [x, x], [x3 + "a"])
        b.add("Mul", [x3 + "a", x], [x3])
        b.add("Mul", [x3, c], [u])
        b.add("Add", [x, u], [v])
        b.add("Mul", [v, k], [w])
        b.add("Tanh", [w], [t1])
    else:
        r = _scalar(b, math.sqrt(0.5), dtype)
        s = b.tmp()
        b.add("Mul", [x, r], [s])
        b.add("Erf", [s], [t1])
    b.add("Add", [t1, one], [t2])
    b.add("Mul", [x, half], [t3])
    b.add("Mul", [t3, t2], [out])


def _slice(b: _Builder, x: str, out: str, index: tuple, shape: tuple) -> None:
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    if Ellipsis in index:
        k = index.index(Ellipsis)
        fill = len(shape) - (len(index) - 1)
        index = index[:k] + (slice(None),) * fill + index[k + 1:]
    d = 0
    for it in index:
        if isinstance(it, slice):
            st, en, sp = it.indices(shape[d])
            if (st, en, sp) != (0, shape[d], 1):
                starts.append(st)
                ends.append(en if en >= 0 else -(2 ** 62))
                axes.append(d)
                steps.append(sp)
            d += 1
        elif isinstance(it, (int, np.integer)):
            i = int(it) % shape[d]
            starts.append(i)
            ends.append(i + 1)
            axes.append(d)
            steps.append(1)
            squeeze.append(d)
            d += 1
        else:
            raise NotImplementedError(f"onnx.export: Slice index {it!r} is not supported")
    cur = x
    if axes:
        nxt = b.tmp() if squeeze else out
        b.add("Slice", [cur, b.const(np.array(starts, np.int64)),
                        b.const(np.array(ends, np.int64)), b.const(np.array(axes, np.int64)),
                        b.const(np.array(steps, np.int64))], [nxt])
        cur = nxt
    if squeeze:
        b.add("Squeeze", [cur, b.const(np.array(squeeze, np.int64))], [out])
    elif not axes:
        b.add("Identity", [cur], [out])


def _translate(b: _Builder, n, names: dict) -> None:
    op = n.op
    ins = [names[v.id] for v in n.inputs[:len(n.inputs) - n.n_attr_inputs]]
    outs = [names[v.id] for v in n.outputs[:len(n.outputs) - len(n.ctx_outputs)]]
    out = outs[0]
    a = n.attrs
    dtype = np.dtype(n.outputs[0].dtype)
    x_shape = tuple(n.inputs[0].shape) if n.inputs else ()
    if n.n_attr_inputs or n.kernel is not None:
        raise NotImplementedError(f"onnx.export: {op} has no ONNX translation")
    if op in _BINARY:
        b.add(_BINARY[op], ins, [out])
    elif op in _UNARY:
        b.add(_UNARY[op], ins, [out])
    elif op == "Rsqrt":
        t = b.tmp()
        b.add("Sqrt", ins, [t])
        b.add("Reciprocal", [t], [out])
    elif op == "Silu":
        t = b.tmp()
        b.add("Sigmoid", ins, [t])
        b.add("Mul", [ins[0], t], [out])
    elif op == "Gelu":
        _gelu(b, ins[0], out, dtype, a["approximate"])
    elif op == "LeakyRelu":
        b.add("LeakyRelu", ins, [out], alpha=float(a["negative_slope"]))
    elif op == "Matmul":
        b.add("MatMul", ins, [out])
    elif op == "Permute":
        b.add("Transpose", ins, [out], perm=list(a["dims"]))
    elif op in ("View", "ReshapeCopy"):
        b.add("Reshape", [ins[0], b.const(np.array(a["shape"], np.int64))], [out])
    elif op == "Expand":
        b.add("Expand", [ins[0], b.const(np.array(a["shape"], np.int64))], [out])
    elif op == "Sum":
        b.add("ReduceSum", [ins[0], b.const(np.array(a["dims"], np.int64))], [out],
              keepdims=int(a["keepdim"]))
    elif op == "Amax":
        b.add("ReduceMax" if a["largest"] else "ReduceMin", ins, [out],
              axes=list(a["dims"]), keepdims=int(a["keepdim"]))
    elif op in ("Softmax", "LogSoftmax"):
        b.add(op, ins, [out], axis=int(a["dim"]))
    elif op == "Cast":
        from onnx import helper

        b.add("Cast", ins, [out], to=helper.np_dtype_to_tensor_dtype(dtype))
    elif op == "Where":
        b.add("Where", ins, [out])
    elif op == "Cat":
        b.add("Concat", ins, [out], axis=int(a["dim"]))
    elif op == "Clamp":
        lo = b.const(np.array(a["lo"], dtype)) if a["lo"] is not None else ""
        hi = b.const(np.array(a["hi"], dtype)) if a["hi"] is not None else ""
        b.add("Clip", [ins[0], lo, hi], [out])
    elif op == "Slice":
        _slice(b, ins[0], out, tuple(a["index"]), x_shape)
    elif op == "Conv2d":
        ph, pw = a["padding"]
        b.add("Conv", ins, [out], strides=list(a["stride"]), pads=[ph, pw, ph, pw],
              dilations=list(a["dilation"]), group=int(a["groups"]))
    elif op == "MaxPool2d":
        ph, pw = a["padding"]
        b.add("MaxPool", ins, [out], kernel_shape=list(a["kernel"]),
              strides=list(a["stride"]), pads=[ph, pw, ph, pw],
              dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]))
    elif op == "AvgPool2d":
        if a.get("divisor_override"):
            raise NotImplementedError("onnx.export: avg_pool2d divisor_override has no "
                                      "ONNX translation")
        ph, pw = a["padding"]
        b.add("AveragePool", ins, [out], kernel_shape=list(a["kernel"]),
              strides=list(a["stride"]), pads=[ph, pw, ph, pw],
              ceil_mode=int(a["ceil_mode"]), count_include_pad=int(a["count_include_pad"]))
    elif op == "Norm" and a["kind"] == "layer":
        d = x_shape[-1]
        w = ins[1] if a["has_w"] else b.const(np.ones(d, dtype))
        bias = ins[-1] if a["has_b"] else b.const(np.zeros(d, dtype))
        b.add("LayerNormalization", [ins[0], w, bias], [out], axis=-1,
              epsilon=float(a["eps"]))
    elif op == "Norm" and a["kind"] == "batch":
        raise NotImplementedError("onnx.export: batch norm in training mode; call "
                                  "model.eval() before exporting")
    else:
        raise NotImplementedError(f"onnx.export: the op {op} has no ONNX translation yet")


def export(model, example_inputs: Any, path: str, opset_version: int = 17,
           input_names: list | None = None, output_names: list | None = None) -> None:
    """Trace `model` on `example_inputs` (a Tensor or tuple) and write an ONNX model."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("onnx.export needs the onnx package: pip install onnx") from exc
    from .jit.api import _module_live
    from .jit.compiler import trace_graph
    from .jit.passes import const_fold, cse, dce, simplify
    from .dispatch import get_backend

    if opset_version < 17:
        raise ValueError(f"onnx.export: opset_version must be >= 17 (LayerNormalization), "
                         f"got {opset_version}")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    live, _ = _module_live(model)
    with no_grad():
        tr = trace_graph(model, args, live, op="onnx.export")
    g = tr.graph
    for p in (dce.run, cse.run, simplify.run, dce.run):
        p(g)
    const_fold.run(g, get_backend())
    dce.run(g)
    g.name_values()
    b = _Builder(onnx)
    names: dict = {}
    h = onnx.helper

    def vinfo(name, v):
        return h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(np.dtype(v.dtype)),
                                        list(v.shape))

    graph_inputs = []
    for i, v in enumerate(g.inputs):
        names[v.id] = input_names[i] if input_names else f"input_{i}"
        graph_inputs.append(vinfo(names[v.id], v))
    for i, v in enumerate(g.params):
        t: Tensor = v.data
        names[v.id] = b.const(t._data, f"param_{i}")
    for v in g.leaves():
        if v.kind == "const":
            names[v.id] = b.const(v.data)
    for n in g.nodes:
        for v in n.outputs:
            names[v.id] = f"{n.op.lower()}_{v.name}"
    for n in g.nodes:
        _translate(b, n, names)
    graph_outputs = []
    for i, v in enumerate(g.outputs[:tr.n_out]):
        oname = output_names[i] if output_names else f"output_{i}"
        b.add("Identity", [names[v.id]], [oname])
        graph_outputs.append(vinfo(oname, v))
    graph = h.make_graph(b.nodes, "tinyfw", graph_inputs, graph_outputs, b.inits)
    model_proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset_version)],
                               producer_name="tinyfw")
    model_proto.ir_version = min(model_proto.ir_version, 9)
    onnx.checker.check_model(model_proto, full_check=True)
    onnx.save(model_proto, path)
