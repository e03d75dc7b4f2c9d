"""The executor: a graph becomes one generated Python function, a flat list of kernel calls.

Each node is one line ``v7 = f7(_Ctx(), B, v3, v5, **a7)`` calling the op's own forward
(or ``v7 = k7(v3, v5)`` for a fused kernel); a value is deleted right after its last use,
so intermediate memory follows liveness; fused kernels whose outputs stay inside the call
write into preallocated arena buffers (see passes.memory_plan).  The whole call costs one
Python line per node: no per-op dispatch, no Tensor wrappers, no autograd bookkeeping.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .ir import Graph, fill_slots


class _Ctx:
    """The ctx a forward writes its backward state into; discarded by the executor."""


def _as_array(x):
    """An array for a 0-d result (numpy ops may return numpy scalars)."""
    return np.asarray(x) if isinstance(x, (np.generic, float, int, bool)) else x


def _copy(B, x):
    """A copy of array `x` made by backend `B` (any device)."""
    out = B.empty(x.shape, x.dtype)
    B.copy_(out, x)
    return out


def _accumulated_outputs(graph: Graph) -> dict:
    """{output index: (node, keyword, shape)} for the graph outputs that a node can add
    straight into a given array: the output is one of the node's own (through reshapes
    that nothing else reads) and its op names a keyword for it (``accumulate_into``)."""
    uses: dict[int, int] = {}
    for n in graph.nodes:
        for v in n.inputs:
            uses[v.id] = uses.get(v.id, 0) + 1
    for v in graph.outputs:
        uses[v.id] = uses.get(v.id, 0) + 1
    found: dict = {}
    for j, v in enumerate(graph.outputs):
        if uses[v.id] != 1:
            continue
        while (v.producer is not None and v.producer.kernel is None
               and v.producer.op == "View"
               and uses.get(v.producer.inputs[0].id) == 1):
            v = v.producer.inputs[0]
        n = v.producer
        into = getattr(n.fn, "accumulate_into", None) if n is not None and n.kernel is None else None
        if into and not n.ctx_outputs and into[n.outputs.index(v)] is not None:
            found[j] = (n, into[n.outputs.index(v)], v.shape)
    return found


def build(graph: Graph, backend, args: list | None = None, accumulate: bool = False) -> Callable:
    """Compile `graph` into ``run(*arrays) -> tuple of arrays``.

    ``run.owned(list_of_arrays)`` is the same call taking its arguments in a list that it
    empties: an array nobody else references is then freed right after its last use.

    `args` lists the leaf values passed as arguments (default: inputs, params, grads);
    any other leaf must be a constant.  Arena slots come from ``graph.arena`` when the
    memory planner ran.

    `accumulate`: the function is ``run_owned(list_of_arrays, into)``, `into` holding per
    output None or an array of its shape and dtype (C-contiguous) that the output is ADDED
    into, in place (gradient accumulation into existing ``.grad``); a node whose op can
    add its result into an array itself is handed it (`_accumulated_outputs`), the other
    outputs are added with the backend's add.  Same sums, in the same order: into + out.
    """
    args = list(args) if args is not None else graph.inputs + graph.params + graph.grads
    names: dict[int, str] = {}
    env: dict = {"_Ctx": _Ctx, "B": backend, "_as_array": _as_array, "_copy": _copy}
    for i, v in enumerate(args):
        names[v.id] = f"a{i}"
    for v in graph.leaves():
        if v.id not in names:
            if v.kind != "const":
                raise RuntimeError(f"jit executor: leaf {v} ({v.kind}) is not an argument")
            names[v.id] = f"c{v.id}"
            # a CPU constant (a 0-d one mixes with any device in eager) moves to the
            # graph's device once, here (from_host is the identity on the CPU)
            env[f"c{v.id}"] = backend.from_host(v.data) if type(v.data) is np.ndarray else v.data
    arena = getattr(graph, "arena", {})

    last_use: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            last_use[v.id] = i
    keep = {v.id for v in graph.outputs}

    # the arguments arrive in a list that the function empties, so that an argument it
    # owns (a saved activation of a backward run without retain_graph) is freed at its
    # last use like any intermediate, not when the call returns
    arg_ids = {v.id for v in args}
    fused = _accumulated_outputs(graph) if accumulate else {}
    into_kw: dict = {}  # node -> ", gh_into=_i3" etc.
    for j, (n, kw, shape) in fused.items():
        into_kw[id(n)] = into_kw.get(id(n), "") + f", {kw}=_i{j}"
    lines = ["def run_owned(_a, _into):" if accumulate else "def run_owned(_a):"]
    if args:
        lines.append(f"    {', '.join(f'a{i}' for i in range(len(args)))}, = _a")
    lines.append("    _a.clear()")
    unused = [names[v.id] for v in dict.fromkeys(args)
              if v.id not in last_use and v.id not in keep]
    if unused:
        lines.append(f"    del {', '.join(dict.fromkeys(unused))}")
    for i, n in enumerate(graph.nodes):
        for v in n.outputs:
            names[v.id] = f"v{v.id}"
        ins = ", ".join(names[v.id] for v in n.inputs)
        outs = ", ".join(names[v.id] for v in n.outputs)
        if n.kernel is not None:
            env[f"k{i}"] = n.kernel
            slots = [arena.get(v.id) for v in n.outputs]
            extra = ""
            if any(type(s) is tuple for s in slots):  # written over a dying input
                env[f"o{i}"] = slots
                extra = ", out=(" + "".join(
                    (names[s[1].id] if type(s) is tuple else
                     "None" if s is None else f"o{i}[{j}]") + ", "
                    for j, s in enumerate(slots)) + ")"
            elif any(s is not None for s in slots):
                env[f"o{i}"] = tuple(slots)
                extra = f", out=o{i}"
            lines.append(f"    {outs}{',' if len(n.outputs) == 1 else ''} = k{i}({ins}{extra})")
        else:
            env[f"f{i}"] = n.fn.forward
            for j, (fn_node, _, shape) in fused.items():
                if fn_node is n:
                    lines.append(f"    _i{j} = _into[{j}]")
                    lines.append(f"    if _i{j} is not None: _i{j} = B.view(_i{j}, {shape!r})")
            kwx = into_kw.get(id(n), "")
            if n.n_attr_inputs:
                k = len(n.inputs) - n.n_attr_inputs
                ins = ", ".join(names[v.id] for v in n.inputs[:k])
                kw = ", ".join(names[v.id] for v in n.inputs[k:])
                env[f"t{i}"], env["_fill"] = n.attrs, fill_slots
                call = (f"f{i}(_Ctx(), B{', ' if ins else ''}{ins}{kwx}, "
                        f"**_fill(t{i}, ({kw},)))")
            elif n.attrs:
                env[f"t{i}"] = n.attrs
                call = f"f{i}(_Ctx(), B{', ' if ins else ''}{ins}{kwx}, **t{i})"
            else:
                call = f"f{i}(_Ctx(), B{', ' if ins else ''}{ins}{kwx})"
            if n.ctx_outputs:
                k = len(n.outputs) - len(n.ctx_outputs)
                lines.append(f"    _c = _Ctx()")
                call = call.replace("_Ctx()", "_c", 1)
                main = ", ".join(names[v.id] for v in n.outputs[:k])
                lines.append(f"    {main}{',' if k == 1 else ''} = "
                             + (f"({call},)" if k == 1 else call))
                for name, v in zip(n.ctx_outputs, n.outputs[k:]):
                    lines.append(f"    {names[v.id]} = _c.{name}")
            elif len(n.outputs) == 1:
                wrap = "_as_array(" + call + ")" if n.outputs[0].shape == () else call
                if getattr(n.fn, "host_output", False):
                    # a host value (a drawn seed) joins the device's ops as eager's 0-d
                    # CPU tensors do: moved there (from_host is the identity on the CPU)
                    wrap = f"B.from_host({wrap})"
                lines.append(f"    {outs} = {wrap}")
            else:
                lines.append(f"    _r = {call}")
                for j, v in enumerate(n.outputs):
                    lines.append(f"    {names[v.id]} = _as_array(_r[{j}])")
        dead = [names[v.id] for v in dict.fromkeys(n.inputs)
                if last_use.get(v.id) == i and v.id not in keep
                and (v.producer is not None or v.id in arg_ids)]
        dead += [names[v.id] for v in n.outputs if v.id not in last_use and v.id not in keep]
        if dead:
            lines.append(f"    del {', '.join(dict.fromkeys(dead))}")
    for j, v in enumerate(graph.outputs):
        if accumulate and j not in fused:
            lines.append(f"    if _into[{j}] is not None: B.add(_into[{j}], {names[v.id]}, "
                         f"out=_into[{j}])")
    rets = []
    for v in graph.outputs:
        nm = names[v.id]
        # a constant handed out must not be the one the graph keeps using
        # (through the backend: a device array has no .copy())
        rets.append(f"_copy(B, {nm})" if v.kind == "const" else nm)
    lines.append(f"    return ({', '.join(rets)}{',' if len(rets) == 1 else ''})")
    src = "\n".join(lines)
    exec(compile(src, "<tinyfw.jit graph>", "exec"), env)  # noqa: S102 - our own source
    owned = env["run_owned"]

    if accumulate:
        run = owned
        run.owned = owned
        run.source = src
        return run

    def run(*arrays):
        return owned(list(arrays))

    run.owned = owned
    run.source = src
    return run
