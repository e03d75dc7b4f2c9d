"""tinyfw.profiler.compare: the compression report's figures against independent
computations (file sizes, counts, metrics), the table and the chart."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
from tinyfw import profiler
from tinyfw import quantization as Q
from tinyfw.metrics import accuracy, f1_score
from tinyfw.nn.utils import prune as P


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """The report compares int8 models, and tinyfw.quantization is CPU-only: these tests
    run on the CPU whatever the suite's device."""
    with tinyfw.device("cpu"):
        yield


def _data(n=96):
    g = np.random.default_rng(0)
    x = g.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + 2 * (x[:, 2] > 0.5)
    return tinyfw.from_numpy(x), tinyfw.from_numpy(y)


def test_compare_rows_table_and_chart(tmp_path, capsys):
    tinyfw.manual_seed(0)
    x, y = _data()
    base = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 3))
    pruned = copy.deepcopy(base)
    P.l1_unstructured(pruned[0], "weight", 0.5)
    P.remove(pruned[0], "weight")
    prepared = Q.prepare(Q.QuantWrapper(copy.deepcopy(base)))
    prepared(x)
    qmodel = Q.convert(prepared)
    models = {"float": base, "pruned 50%": pruned, "int8": qmodel}
    rows = profiler.compare(models, (x, y), latency_runs=5, throughput_runs=3, batch=16,
                            chart=tmp_path / "c.png")
    assert [r["model"] for r in rows] == list(models)
    for r, m in zip(rows, models.values()):
        tinyfw.save(m.state_dict(), tmp_path / "m.tinyfw")
        assert r["bytes"] == os.path.getsize(tmp_path / "m.tinyfw")
        with tinyfw.no_grad():
            pred = m(x).argmax(1)
        assert r["accuracy"] == accuracy(y, pred)
        assert r["f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
        assert r["delta_accuracy"] == pytest.approx(100 * (r["accuracy"] - rows[0]["accuracy"]))
        assert r["compression"] == pytest.approx(rows[0]["bytes"] / r["bytes"])
        assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"] and r["throughput"] > 0
    assert rows[0]["parameters"] == rows[1]["parameters"] == 6 * 256 + 256 + 256 * 3 + 3
    assert rows[1]["nonzero"] == rows[0]["nonzero"] - 768  # half of the first weights
    assert rows[2]["parameters"] == rows[0]["parameters"]  # int8 weights and biases count
    # 1 byte per weight against 4, but 8 bytes per output channel (scale, bias) in both
    # forms: (4 * 2563) / (2304 + 8 * 259) = 2.3 before the file headers
    assert rows[2]["compression"] > 1.8
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["model", "params", "nonzero"]
    assert "pruned 50%" in out and "int8" in out
    with open(tmp_path / "c.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_compare_takes_batches_and_checks_arguments():
    x, y = _data(40)
    model = nn.Sequential(nn.Linear(6, 3))
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 40, 16)]
    rows = profiler.compare({"m": model}, batches, latency_runs=2, throughput_runs=2,
                            batch=64, verbose=False)  # a batch larger than the data repeats it
    assert rows[0]["compression"] == 1.0 and rows[0]["delta_f1"] == 0.0
    with pytest.raises(ValueError, match="no models"):
        profiler.compare({}, (x, y))
    with pytest.raises(ValueError, match="latency_runs"):
        profiler.compare({"m": model}, (x, y), latency_runs=0)
