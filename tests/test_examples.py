"""The examples run end to end (``--quick``) in a subprocess and produce their artifacts."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import tinyfw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run(script: str, *args: str, timeout: int = 600) -> str:
    """Run an example; return its stdout (fail with its stderr on a non-zero exit)."""
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), "--no-progress",
                           *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _is_png(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("model,min_acc", [("cnn", 0.85), ("mlp", 0.85)])
def test_train_digits_quick(tmp_path, model, min_acc):
    out = run("train_digits.py", "--quick", "--model", model, "--out", str(tmp_path))
    acc = float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))
    # two epochs already learn most of the task; a broken layer/optimizer stays near 0.1
    assert acc >= min_acc, out
    ckpt = tmp_path / f"digits_{model}.tinyfw"
    state = tinyfw.load(ckpt)
    assert state["epoch"] == 2
    assert ("0.weight" if model == "cnn" else "1.weight") in state["model"], list(state["model"])
    assert state["optimizer"]["state"], "optimizer state was saved"
    assert _is_png(tmp_path / f"curves_{model}.png")
    assert _is_png(tmp_path / f"confusion_{model}.png")


@pytest.mark.slow
def test_train_digits_full_reaches_97_percent(tmp_path):
    out = run("train_digits.py", "--out", str(tmp_path))
    acc = float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))
    assert acc >= 0.97, out


def test_train_digits_data_parallel_quick(tmp_path):
    out = run("train_digits.py", "--quick", "--nproc", "2", "--device", "cpu", "--out",
              str(tmp_path))
    assert "2 data-parallel workers (shm)" in out, out
    assert out.count("final test accuracy") == 1, "rank 0 alone reports"
    acc = float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))
    assert acc >= 0.85, out
    state = tinyfw.load(tmp_path / "digits_cnn_ddp.tinyfw")  # the Trainer's checkpoint
    assert state["epoch"] == 2 and "0.weight" in state["model"]
    assert _is_png(tmp_path / "curves_cnn_ddp.png")


def test_char_lm_data_parallel_quick():
    out = run("char_lm.py", "--quick", "--nproc", "2", "--device", "cpu")
    before, after = map(float, re.search(r"validation loss: ([0-9.]+) -> ([0-9.]+)", out).groups())
    assert after < before - 0.5, out
    assert out.count("sample:") == 1, "rank 0 alone reports"


def test_char_lm_quick_learns():
    out = run("char_lm.py", "--quick")
    before, after = map(float, re.search(r"validation loss: ([0-9.]+) -> ([0-9.]+)", out).groups())
    assert after < before - 0.5, out  # from ~ln(41) = 3.7 towards character statistics
    sample = re.search(r"sample: (.*)", out).group(1)
    assert sample.startswith("The keeper ") and len(sample) >= 150


def test_compare_optimizers_quick(tmp_path):
    out = run("compare_optimizers.py", "--quick", "--out", str(tmp_path))
    for name in ("SGD", "Adam", "RMSprop", "AdaGrad"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name))
        acc = float(re.search(r"test accuracy ([0-9.]+)", line).group(1))
        assert acc > 0.5, line
    assert _is_png(tmp_path / "optimizers.png")


def test_distill_quick():
    out = run("distill.py", "--quick")
    rows = {ln.split()[0] + ln.split()[1]: ln for ln in out.splitlines()
            if ln.startswith(("teacher (", "student, "))}
    accs = [float(ln.split()[-1]) for ln in rows.values()]
    assert len(accs) == 3 and all(a > 0.5 for a in accs), out
    params = [int(ln.split()[-3].replace(",", "")) for ln in rows.values()]
    assert params[0] > 10 * params[1] and params[1] == params[2] == 64 * 16 + 16 + 16 * 10 + 10
    assert re.search(r"student is [0-9.]+x smaller", out)


def test_compress_digits_quick(tmp_path):
    import json

    out = run("compress_digits.py", "--quick", "--out", str(tmp_path))
    assert "int8 PTQ" in out and "channels 50% shrunk" in out, out
    rows = {r["model"]: r for r in json.loads((tmp_path / "compare.json").read_text())}
    assert list(rows) == ["float32", "int8 PTQ", "int8 QAT", "pruned 50%", "pruned 80%",
                          "pruned 90%", "channels 50% shrunk", "student (distilled)"]
    assert rows["float32"]["accuracy"] > 0.85, out  # a broken training stays near 0.1
    assert rows["int8 PTQ"]["compression"] >= 3.8, out
    # three rounds shrink to one in quick mode: the global threshold still hits the target
    assert rows["pruned 90%"]["nonzero"] <= 0.11 * rows["float32"]["nonzero"]
    assert rows["channels 50% shrunk"]["parameters"] < 0.3 * rows["float32"]["parameters"]
    assert all(r["accuracy"] > 0.5 for r in rows.values()), out
    table = (tmp_path / "compare.txt").read_text().splitlines()
    assert [ln.split("  ")[0] for ln in table[3:11]] == list(rows)  # title, head, rule
    assert "total" in (tmp_path / "sparsity.txt").read_text()
    assert _is_png(tmp_path / "compare.png")
