"""ONNX export: `tinyfw.onnx.export(model, example_inputs, path, opset_version=17)`.

The model is traced (inference: grad mode off) and cleaned by the jit's DCE, CSE,
constant-folding and simplification passes; every remaining node is translated to ONNX
operators as its op's ``onnx`` attribute says (see `Function`; parameters and constants
become initializers).  An op with no translation raises an error naming it.  Requires the
`onnx` package.  A converted int8 model (`tinyfw.quantization.convert`) is exported in
QDQ form instead (tinyfw/quantization/onnx_qdq.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd.function import no_grad
from .backend import backend_of
from .tensor import Tensor


class _Builder:
    """Accumulates ONNX nodes and initializers while walking the graph.

    The ops' ``onnx`` hooks (see `Function`) write through it: ``add``, ``tmp`` and the
    constant makers below, which take plain numbers, so an op's file needs neither numpy
    nor onnx."""

    def __init__(self, onnx_mod, opset: int) -> None:
        self.onnx = onnx_mod
        self.h = onnx_mod.helper
        self.opset = opset
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

    def scalar(self, x: float, dtype) -> str:
        """A 0-d initializer holding `x` in `dtype` (a traced value's dtype)."""
        return self.const(np.array(x, dtype))

    def full(self, shape: tuple, x: float, dtype) -> str:
        """An initializer of `shape` filled with `x` in `dtype`."""
        return self.const(np.full(shape, x, dtype))

    def ints(self, values) -> str:
        """A 1-d int64 initializer (shapes, axes, slice bounds)."""
        return self.const(np.array(values, np.int64))

    def tensor_type(self, dtype) -> int:
        """The ONNX element type of `dtype` (for Cast's ``to``)."""
        return self.h.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def tmp(self) -> str:
        """A fresh intermediate name."""
        self.k += 1
        return f"t_{self.k}"

    def add(self, op: str, ins: list, outs: list, **attrs) -> None:
        """Append one ONNX node."""
        self.nodes.append(self.h.make_node(op, ins, outs, **attrs))

    def reduce(self, op: str, x: str, out: str, axes, keepdims: bool) -> None:
        """A Reduce* node over `axes`: from opset 18 on every reduction takes its axes as
        an input (ReduceSum since 13), before that as an attribute."""
        if op == "ReduceSum" or self.opset >= 18:
            self.add(op, [x, self.ints(list(axes))], [out], keepdims=int(keepdims))
        else:
            self.add(op, [x], [out], axes=list(axes), keepdims=int(keepdims))

    def basic_index(self, x: str, out: str, index: tuple, shape: tuple) -> None:
        """out = x[index] for a basic index of ints, slices and one Ellipsis (x of
        `shape`): a Slice over the sliced axes, then a Squeeze of the integer ones."""
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
            nxt = self.tmp() if squeeze else out
            self.add("Slice", [cur, self.ints(starts), self.ints(ends), self.ints(axes),
                               self.ints(steps)], [nxt])
            cur = nxt
        if squeeze:
            self.add("Squeeze", [cur, self.ints(squeeze)], [out])
        elif not axes:
            self.add("Identity", [cur], [out])


def _translate(b: _Builder, n, names: dict) -> None:
    """Add the ONNX nodes of graph node `n` as its op's ``onnx`` declaration says."""
    op = n.op
    ins = [names[v.id] for v in n.inputs[:len(n.inputs) - n.n_attr_inputs]]
    outs = [names[v.id] for v in n.outputs[:len(n.outputs) - len(n.ctx_outputs)]]
    if n.n_attr_inputs or n.kernel is not None:
        raise NotImplementedError(f"onnx.export: {op} has no ONNX translation")
    rule = getattr(n.fn, "onnx", None)
    if rule is None:
        raise NotImplementedError(f"onnx.export: the op {op} has no ONNX translation yet")
    if isinstance(rule, str):  # an ONNX operator with the same inputs and no attributes
        b.add(rule, ins, [outs[0]])
    else:
        rule(b, n, ins, outs[0])


#: the opsets export writes (each is exported and run in onnxruntime by tests/test_onnx.py)
MIN_OPSET, MAX_OPSET = 17, 23


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

    if not MIN_OPSET <= opset_version <= MAX_OPSET:
        raise ValueError(f"onnx.export: opset_version must be in {MIN_OPSET}..{MAX_OPSET} "
                         f"(17 has LayerNormalization; every opset of the range is tested "
                         f"against onnxruntime), got {opset_version}")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    from .quantization.onnx_qdq import export_qdq, is_quantized

    if is_quantized(model):  # QTensor activations: walked module by module, not traced
        if len(args) != 1:
            raise ValueError("onnx.export: a quantized model takes one input")
        export_qdq(model, args[0], path, opset_version,
                   *((input_names[0],) if input_names else ()),
                   *((output_names[0],) if output_names else ()))
        return
    live, _ = _module_live(model)
    with no_grad():
        tr = trace_graph(model, args, live, op="onnx.export")
    g = tr.graph
    for p in (dce.run, cse.run, simplify.run, dce.run):
        p(g)
    const_fold.run(g, get_backend())
    dce.run(g)
    g.name_values()
    b = _Builder(onnx, opset_version)
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
        names[v.id] = b.const(t._host(), f"param_{i}")
    for v in g.leaves():
        if v.kind == "const":
            a = v.data  # a device's array (the checking device, cuda) comes to the host first
            names[v.id] = b.const(a if isinstance(a, (np.ndarray, np.generic))
                                  else backend_of(a).to_host(a))
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
