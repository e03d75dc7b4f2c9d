"""The compression report: `compare` several variants of one model (float, quantized,
pruned, distilled) on the same data, as ``tinyfw.profiler.compare``.

    rows = tinyfw.profiler.compare({"float": model, "int8": qmodel}, (x_test, y_test),
                                   chart="compare.png")

Per model: parameters (quantized layers' int8 weights and biases count as parameters),
non-zero parameters (what unstructured pruning removes without shrinking the file),
bytes on disk (the state dict written with `tinyfw.save` to a temporary file: a pruned
model still holding its masks pays for them, `prune.remove` first), compression rate
against the first model, accuracy / macro precision / recall / F1 and their change in
points, latency p50/p99 of one-sample forwards, and throughput (samples/s) at batch 64.
The timed calls run the models interleaved, round by round, so a machine that slows
down slows all of them alike.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Mapping

import numpy as np

from .autograd.function import no_grad
from .tensor import Tensor

__all__ = ["compare", "compare_table", "compare_chart"]


def _data(data) -> tuple:
    """(x, y) tensors from an (x, y) pair or an iterable of (x, y) batches."""
    from .ops.index import cat

    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        return data[0], data[1]
    xs, ys = zip(*data)
    if not xs:
        raise ValueError("compare: the data holds no batch")
    return cat(list(xs)), cat(list(ys))


def _counts(model) -> tuple:
    """(parameters, non-zero parameters): parameters as a forward sees them (masked
    when pruned), plus the int8 weights and bias of quantized layers (buffers)."""
    from .nn.utils.prune.shrink import _effective

    total = nonzero = 0
    for m in model.modules():
        names = {k[:-5] if k.endswith("_orig") else k for k, v in m._parameters.items()
                 if v is not None}
        vals = [_effective(m, k) for k in names]
        if not names and "weight" in m._buffers and hasattr(m, "has_bias"):
            w = m._buffers["weight"]
            vals = [w]
            if m.has_bias:
                vals.append(m._buffers["channel_params"][1])
        for v in vals:
            total += v.numel()
            nonzero += int((v != 0).sum().item())
    return total, nonzero


def _file_bytes(model) -> int:
    from .serialization import save

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tinyfw")
        save(model.state_dict(), path)
        return os.path.getsize(path)


@no_grad()
def _predict(model, x: Tensor, batch: int = 256) -> np.ndarray:
    out = [np.asarray(model(x[i:i + batch]).argmax(1).cpu().tolist())
           for i in range(0, x.shape[0], batch)]
    return np.concatenate(out)


@no_grad()
def _timings(models: Mapping[str, Any], x: Tensor, latency_runs: int,
             throughput_runs: int, batch: int) -> dict:
    """Interleaved timings: per model, one-sample latencies and batch times (seconds)."""
    from .creation import arange

    n = x.shape[0]
    lat = {k: [] for k in models}
    thr = {k: [] for k in models}
    big = x[:batch] if n >= batch else x[arange(batch, device=x.device) % n]
    for m in models.values():  # warm-up: first-call costs are not what we measure
        m(x[:1])
        m(big)
    # each timed call follows an untimed one of the same model, so that it does not pay
    # for the model before it (a thread pool gone to sleep, caches it evicted)
    for r in range(latency_runs):
        xi = x[r % n:r % n + 1]
        for k, m in models.items():
            m(xi)
            t0 = time.perf_counter()
            m(xi)
            lat[k].append(time.perf_counter() - t0)
    for _ in range(throughput_runs):
        for k, m in models.items():
            m(big)
            t0 = time.perf_counter()
            m(big)
            thr[k].append(time.perf_counter() - t0)
    return {k: (lat[k], thr[k]) for k in models}


def compare(models: Mapping[str, Any], data, *, latency_runs: int = 200,
            throughput_runs: int = 20, batch: int = 64, average: str = "macro",
            chart: str | os.PathLike | None = None, title: str = "Model comparison",
            verbose: bool = True) -> list[dict]:
    """Measure each model (see module doc) on `data`, an (x, y) pair of tensors or an
    iterable of (x, y) batches (classification: the prediction is the argmax of the
    output).  Models are put in eval mode.  Prints `compare_table` when `verbose`, writes
    `compare_chart` to `chart` when given; returns one dict per model, in order."""
    from .metrics import accuracy, precision_recall_fscore

    if not models:
        raise ValueError("compare: no models given")
    if latency_runs < 1 or throughput_runs < 1 or batch < 1:
        raise ValueError("compare: latency_runs, throughput_runs and batch must be >= 1")
    x, y = _data(data)
    labels = np.asarray(y.cpu().tolist())
    for m in models.values():
        m.eval()
    times = _timings(models, x, latency_runs, throughput_runs, batch)
    rows = []
    for name, m in models.items():
        pred = _predict(m, x)
        p, r, f = precision_recall_fscore(labels, pred, average=average, zero_division=0)
        params, nonzero = _counts(m)
        lat, thr = times[name]
        rows.append({"model": name, "parameters": params, "nonzero": nonzero,
                     "bytes": _file_bytes(m), "accuracy": accuracy(labels, pred),
                     "precision": float(p), "recall": float(r), "f1": float(f),
                     "latency_p50_ms": float(np.percentile(lat, 50)) * 1e3,
                     "latency_p99_ms": float(np.percentile(lat, 99)) * 1e3,
                     "throughput": batch / float(np.median(thr))})
    base = rows[0]
    for row in rows:
        row["compression"] = base["bytes"] / row["bytes"]
        row["speedup_p50"] = base["latency_p50_ms"] / row["latency_p50_ms"]
        for k in ("accuracy", "precision", "recall", "f1"):
            row[f"delta_{k}"] = 100.0 * (row[k] - base[k])  # points
    if verbose:
        print(compare_table(rows, title))
    if chart is not None:
        compare_chart(rows, chart, title)
    return rows


def compare_table(rows: list[dict], title: str = "Model comparison") -> str:
    """The rows of `compare` as a text table (changes against the first row)."""
    head = (f"{'model':<24}{'params':>9}{'nonzero':>9}{'KiB':>8}{'x':>6}{'acc %':>7}"
            f"{'Δacc':>7}{'prec':>7}{'rec':>7}{'F1':>7}{'ΔF1':>7}{'p50 ms':>8}"
            f"{'p99 ms':>8}{'samp/s':>9}")
    lines = [title, head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model'][:23]:<24}{r['parameters']:>9,}{r['nonzero']:>9,}"
            f"{r['bytes'] / 1024:>8.1f}{r['compression']:>6.2f}{100 * r['accuracy']:>7.2f}"
            f"{r['delta_accuracy']:>+7.2f}{100 * r['precision']:>7.2f}"
            f"{100 * r['recall']:>7.2f}{100 * r['f1']:>7.2f}{r['delta_f1']:>+7.2f}"
            f"{r['latency_p50_ms']:>8.3f}{r['latency_p99_ms']:>8.3f}{r['throughput']:>9.0f}")
    lines.append(f"x: file size compression against {rows[0]['model']!r}; Δ: change in "
                 "points; latency at batch 1, throughput at the compare batch")
    return "\n".join(lines)


def compare_chart(rows: list[dict], path: str | os.PathLike,
                  title: str = "Model comparison") -> str:
    """Bar charts, the models side by side: file size, accuracy, latency p50 and
    throughput.  Returns the path."""
    from .plot import _pyplot

    plt = _pyplot()
    names = [r["model"] for r in rows]
    panels = [("file size (KiB)", [r["bytes"] / 1024 for r in rows]),
              ("test accuracy (%)", [100 * r["accuracy"] for r in rows]),
              ("latency p50, batch 1 (ms)", [r["latency_p50_ms"] for r in rows]),
              ("throughput (samples/s)", [r["throughput"] for r in rows])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (label, vals) in zip(axes, panels):
        bars = ax.bar(range(len(vals)), vals,
                      color=[colors[i % len(colors)] for i in range(len(vals))])
        ax.set_xticks(range(len(vals)), names, rotation=40, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if "accuracy" in label:
            lo = min(vals)
            ax.set_ylim(max(0.0, lo - 5), 100)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.3g}" for v in vals],
                     fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)
    return os.fspath(path)
