"""`explain(fn, *inputs)`: what each pass did to the graph of fn on these inputs."""
from __future__ import annotations

from collections.abc import Callable


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def explain(fn: Callable, *inputs, print_graphs: bool = False, file=None) -> str:
    """Trace and optimize `fn` on `inputs`, print (and return) a report of every pass:
    nodes before/after, what was removed/folded/rewritten, memory plan peaks, and each
    fusion decision with its reason: the groups fused (and the intermediate bytes they
    never write) and the ops kept as eager kernels (why: alone, or hand-vectorised), and the
    parallel regions (passes/interop.py: each branch's ops and threads, or why independent
    parts were kept in order).  `print_graphs` appends the optimized graphs."""
    from .api import TracedFunction

    tf = fn if isinstance(fn, TracedFunction) else TracedFunction(fn)
    c = tf.get_compiled(inputs)
    lines = [f"jit.explain({tf.name}):"]
    for s in c.stats:
        head = f"  {s['pass']:<17} {s['graph']:<9} nodes {s['nodes_before']:>4} -> " \
               f"{s['nodes_after']:<4}"
        extra = []
        for k, v in s.items():
            if k in ("pass", "graph", "nodes_before", "nodes_after", "groups", "decisions"):
                continue
            extra.append(f"{k}={_fmt_bytes(v) if k.endswith('bytes') else v}")
        lines.append(head + " " + " ".join(extra))
        if "decisions" in s:  # one line per choice: "fused: ...: why", "kept eager: ...: why"
            lines += [f"      {d}" for d in s["decisions"]]
        else:
            lines += [f"      fused: {grp}" for grp in s.get("groups", [])]
    if print_graphs:
        lines.append("forward graph:")
        lines.append(str(c.fwd_graph))
        if c.bwd_graph is not None:
            lines.append("backward graph:")
            lines.append(str(c.bwd_graph))
    text = "\n".join(lines)
    print(text, file=file)
    return text
