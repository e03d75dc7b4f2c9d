"""Dead-code elimination: drop nodes none of whose outputs is used (all ops are pure)."""
from __future__ import annotations

from ..ir import Graph


def run(graph: Graph) -> dict:
    """Remove unused nodes, last to first so that chains of dead nodes go in one sweep."""
    before = len(graph.nodes)
    used = {v.id for v in graph.outputs}
    keep = []
    for n in reversed(graph.nodes):
        if any(v.id in used for v in n.outputs):
            keep.append(n)
            used.update(v.id for v in n.inputs)
    keep.reverse()
    graph.nodes = keep
    return {"removed": before - len(keep)}
