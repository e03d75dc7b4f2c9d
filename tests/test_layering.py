"""Layering rules that keep devices honest (issue 9): no numpy outside the backends in the
core packages, and nothing reads a tensor's array other than through the array protocol."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tinyfw"
# packages that must reach data only through backend functions (issue 9)
NO_NUMPY = ["ops", "autograd", "optim", "nn", "amp", "creation.py", "serialization.py"]
# the attributes every backend array has (docs/devices.md); anything else read off
# `._data` is a numpy method or flag that a device array does not have
PROTOCOL = {"shape", "dtype", "ndim", "size", "itemsize", "strides", "device", "backend"}


def _files(entries):
    for e in entries:
        p = ROOT / e
        yield from ([p] if p.suffix == ".py" else sorted(p.rglob("*.py")))


@pytest.mark.parametrize("path", list(_files(NO_NUMPY)), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_numpy_outside_the_backends(path):
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in ("numpy", "ml_dtypes")]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] in ("numpy", "ml_dtypes"):
            bad.append(node.module)
    assert not bad, f"{path.name} imports {bad}: go through tinyfw.backend (host.py for host data)"


@pytest.mark.parametrize("path", list(_files(NO_NUMPY + ["jit", "onnx.py", "profiler.py",
                                                         "summary.py", "data", "metrics.py"])),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_arrays_are_read_only_through_the_protocol(path):
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                node.value.attr == "_data" and node.attr not in PROTOCOL:
            bad.append(f"line {node.lineno}: ._data.{node.attr}")
    assert not bad, f"{path.name} reads {bad}; use the backend (B.<fn>) or the protocol {sorted(PROTOCOL)}"
