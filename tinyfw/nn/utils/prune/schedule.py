"""The iterative pruning schedule (prune → fine-tune → prune, towards a target sparsity)
and the per-layer sparsity report."""
from __future__ import annotations

from typing import Any, Callable

from ... import modules as nn
from ...modules.module import Module
from .methods import global_unstructured, l1_unstructured, L1Unstructured
from .shrink import _effective, prune_channels

__all__ = ["iterative_prune", "sparsity_schedule", "sparsity_report", "SparsityReport"]


def sparsity_schedule(target: float, rounds: int, kind: str = "cubic") -> list[float]:
    """Cumulative sparsity after each of `rounds` rounds, ending at `target`: 'linear'
    steps, or 'cubic' (Zhu & Gupta, 2017: s_k = target * (1 - (1 - k/rounds)^3), large
    steps while the network has redundancy to lose, small ones near the end)."""
    if not 0.0 <= target < 1.0:
        raise ValueError(f"sparsity_schedule: target must be in [0, 1), got {target}")
    if rounds < 1:
        raise ValueError(f"sparsity_schedule: rounds must be >= 1, got {rounds}")
    if kind == "linear":
        return [target * k / rounds for k in range(1, rounds + 1)]
    if kind == "cubic":
        return [target * (1 - (1 - k / rounds) ** 3) for k in range(1, rounds + 1)]
    raise ValueError(f"sparsity_schedule: kind must be 'linear' or 'cubic', got {kind!r}")


def _zeros(t) -> int:
    return int((t == 0).sum().item())


def _weights(model: Module) -> list:
    return [(m, "weight") for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)]


def iterative_prune(model: Module, target: float, rounds: int,
                    fine_tune: Callable[[int], Any] | None = None, *,
                    structured: bool = False, scope: str = "global", n=2,
                    schedule: str = "cubic") -> list[dict]:
    """Prune `model` in `rounds` steps to `target` sparsity, calling ``fine_tune(k)``
    after round k (k = 1..rounds) so the network recovers before the next cut.

    Unstructured: L1 magnitude over the weights of every Conv2d and Linear, either
    ``scope='global'`` (one threshold for all: layers lose unevenly) or ``'layer'``
    (each layer the same fraction).  ``structured=True``: `prune_channels` (Ln norm, the
    output channels `shrink` can remove; pruned channels emit zero; the last layer is
    not pruned).  Each round prunes the fraction of what is left
    that brings the cumulative sparsity to `sparsity_schedule(target, rounds, schedule)`.
    Returns one dict per round: round, target (cumulative), sparsity (measured: zeros in
    the weights of the pruned Conv2d/Linear layers)."""
    if scope not in ("global", "layer"):
        raise ValueError(f"iterative_prune: scope must be 'global' or 'layer', got {scope!r}")
    params = _weights(model)
    if not params:
        raise ValueError("iterative_prune: the model has no Conv2d or Linear layer")
    history, before = [], 0.0
    for k, goal in enumerate(sparsity_schedule(target, rounds, schedule), 1):
        amount = 1.0 - (1.0 - goal) / (1.0 - before)  # of what is left
        if structured:
            prune_channels(model, amount, n)
        elif scope == "global":
            global_unstructured(params, L1Unstructured, amount=amount)
        else:
            for m, name in params:
                l1_unstructured(m, name, amount)
        before = goal
        if fine_tune is not None:
            fine_tune(k)
        ws = [_effective(m, name) for m, name in params if hasattr(m, name + "_mask")]
        zeros, size = sum(_zeros(w) for w in ws), sum(w.numel() for w in ws)
        history.append({"round": k, "target": goal, "sparsity": zeros / max(size, 1)})
    return history


class SparsityReport(dict):
    """Per layer (qualified name) a dict: type, params, zeros, sparsity (over all its own
    parameters), weight_sparsity, pruned (holds a mask); plus "total".
    ``str(report)`` / ``report.table()`` is a text table."""

    def table(self) -> str:
        head = (f"{'layer':<28}{'type':<14}{'params':>10}{'zeros':>10}{'sparsity':>10}"
                f"{'weight':>9}")
        lines = [head, "-" * len(head)]
        for name, r in self.items():
            if name == "total":
                continue
            lines.append(f"{name[:27]:<28}{r['type'][:13]:<14}{r['params']:>10,}"
                         f"{r['zeros']:>10,}{r['sparsity']:>10.1%}{r['weight_sparsity']:>9.1%}")
        t = self["total"]
        lines += ["-" * len(head), f"{'total':<42}{t['params']:>10,}{t['zeros']:>10,}"
                                   f"{t['sparsity']:>10.1%}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def sparsity_report(model: Module) -> SparsityReport:
    """Zeros per layer as a forward sees the parameters (masked when pruned); layers are
    the modules that own parameters.  See `SparsityReport`."""
    rep = SparsityReport()
    total_p = total_z = 0
    for qual, m in model.named_modules():
        names = {k[:-5] if k.endswith("_orig") else k for k, v in m._parameters.items()
                 if v is not None}
        if not names:
            continue
        vals = {k: _effective(m, k) for k in sorted(names)}
        params = sum(v.numel() for v in vals.values())
        zeros = sum(_zeros(v) for v in vals.values())
        w = vals.get("weight")
        rep[qual or "(model)"] = {
            "type": type(m).__name__, "params": int(params), "zeros": zeros,
            "sparsity": zeros / params if params else 0.0,
            "weight_sparsity": _zeros(w) / w.numel() if w is not None and w.numel() else 0.0,
            "pruned": any(k.endswith("_mask") for k in m._buffers)}
        total_p += params
        total_z += zeros
    rep["total"] = {"params": total_p, "zeros": total_z,
                    "sparsity": total_z / total_p if total_p else 0.0}
    return rep
