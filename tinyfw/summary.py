"""`summary(model, input_shape)`: a table of a model's layers, output shapes, parameters
and FLOPs, computed on the meta device so that no activation (and, for a model built on
meta, no parameter) is allocated.

    with tinyfw.device("meta"):
        model = GPT(n_layer=24, d_model=2048)      # 1.2 B parameters, no memory
    print(tinyfw.summary(model, (1, 128), dtype=tinyfw.int64))

The forward pass runs once on inputs of the model's device (meta unless the model was
built elsewhere); a dispatch interceptor counts each op's FLOPs (`profiler.flops_of`) and
forward hooks attribute them to the module that ran them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import dtypes as _dt
from .autograd.function import no_grad
from .creation import zeros
from .device import Device, meta
from .tensor import Tensor


@dataclass
class LayerRow:
    """One module call: where it sits, its type, its output shape and its own counts."""

    name: str
    kind: str
    depth: int
    output_shape: tuple | None
    parameters: int
    flops: int


@dataclass
class ModelSummary:
    """What `summary` returns; ``str()`` is the table."""

    rows: list[LayerRow] = field(default_factory=list)
    parameters: int = 0
    trainable: int = 0
    parameter_bytes: int = 0
    flops: int = 0
    input_shape: tuple = ()

    def table(self, depth: int | None = None) -> str:
        """The layers as text, down to `depth` levels of nesting (all by default)."""
        head = f"{'layer (type)':<44}{'output shape':<24}{'params':>14}{'MFLOPs':>12}"
        lines = [head, "=" * len(head)]
        for r in self.rows:
            if depth is not None and r.depth > depth:
                continue
            label = "  " * r.depth + f"{r.name} ({r.kind})"
            shape = "" if r.output_shape is None else str(list(r.output_shape))
            lines.append(f"{label[:43]:<44}{shape[:23]:<24}{r.parameters:>14,}"
                         f"{r.flops / 1e6:>12.1f}")
        lines.append("=" * len(head))
        lines.append(f"input shape {list(self.input_shape)}")
        lines.append(f"parameters: {self.parameters:,} ({self.trainable:,} trainable), "
                     f"{self.parameter_bytes / 2 ** 20:,.1f} MiB")
        lines.append(f"forward FLOPs: {self.flops / 1e9:,.3f} G")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


class _FlopCounter:
    """A dispatch interceptor adding up the FLOPs of every op that runs."""

    def __init__(self) -> None:
        self.total = 0

    def intercept(self, fn, inputs, attrs, run):
        from .profiler import flops_of

        result = run(inputs)
        outs = [result] if isinstance(result, Tensor) else [
            r for r in (result if isinstance(result, (tuple, list)) else ()) if isinstance(r, Tensor)]
        self.total += flops_of(fn, [t.shape for t in inputs], [t.shape for t in outs], attrs)
        return result


def _first_shape(out):
    if isinstance(out, Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        for o in out:
            s = _first_shape(o)
            if s is not None:
                return s
    return None


def _model_device(model) -> Device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return meta


def summary(model, input_shape: tuple | list | None = None, *, inputs=None, dtype=None,
            device=None) -> ModelSummary:
    """Layers, output shapes, parameters and forward FLOPs of `model` on an input of
    `input_shape` (zeros of `dtype`, default float32; pass `inputs=` a tensor or a tuple of
    tensors instead for models with several inputs).  The input is made on `device`
    (default: the model's device, meta for a model built on meta), so a meta model is
    summarised without allocating anything."""
    from .dispatch import pop_interceptor, push_interceptor

    if (input_shape is None) == (inputs is None):
        raise ValueError("summary: pass exactly one of input_shape or inputs")
    dev = _model_device(model) if device is None else Device(device)
    if inputs is None:
        shape = tuple(int(s) for s in input_shape)
        args = (zeros(shape, dtype=_dt.float32 if dtype is None else dtype, device=dev),)
    else:
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        shape = tuple(args[0].shape)
    names = {id(m): n for n, m in model.named_modules()}
    counter = _FlopCounter()
    result = ModelSummary(input_shape=shape)
    stack: list = []

    def pre(module, _args):
        row = LayerRow(names.get(id(module)) or "(model)", type(module).__name__, len(stack),
                       None, sum(p.numel() for p in module.parameters(recurse=False)), 0)
        result.rows.append(row)
        stack.append((row, counter.total))

    def post(module, _args, out):
        row, start = stack.pop()
        row.output_shape = _first_shape(out)
        row.flops = counter.total - start

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    push_interceptor(counter)
    try:
        with no_grad():
            model(*args)
    finally:
        pop_interceptor(counter)
        for h in handles:
            h.remove()
    seen = set()
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            result.parameters += p.numel()
            result.trainable += p.numel() if p.requires_grad else 0
            result.parameter_bytes += p.numel() * p.element_size()
    result.flops = counter.total
    return result


def model_flops(model, input_shape: tuple | list | None = None, *, inputs=None, dtype=None,
                device=None) -> int:
    """Forward FLOPs of `model` on one input (see `summary`, which this runs)."""
    return summary(model, input_shape, inputs=inputs, dtype=dtype, device=device).flops
