"""What a grader's tests use: the student's module, a seed per student, and comparisons
whose failure messages say what was wrong (shape, dtype, the first differing element)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import sys
from types import ModuleType

import numpy as np

from . import SRC_ENV, STUDENT_ENV


def load(name: str, default: pathlib.Path | None = None) -> ModuleType:
    """Import module `name` (e.g. "strided") from the folder the grader was pointed at
    (``--src``, else `default`, the lab's skeleton), fresh each call."""
    src = os.environ.get(SRC_ENV) or (str(default) if default is not None else None)
    if src is None:
        raise RuntimeError(f"the grader needs the student's folder: set {SRC_ENV} or run "
                           "python -m tinyfw.labs grade N --src DIR")
    path = pathlib.Path(src) / f"{name}.py"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the lab's file {name}.py is not in {src}")
    key = f"_tinyfw_lab_student_{name}"
    spec = importlib.util.spec_from_file_location(key, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod
    spec.loader.exec_module(mod)
    return mod


def seed(salt: str = "") -> int:
    """A seed fixed per student id (--student) and test: each student's hidden cases differ,
    and the same student always gets the same ones."""
    who = os.environ.get(STUDENT_ENV, "anonymous")
    return int.from_bytes(hashlib.sha256(f"{who}/{salt}".encode()).digest()[:4], "little")


def expect_array(got, want, what: str, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Assert `got` equals `want` (numpy-convertible): the message names the shape or
    dtype that differs, or the first element that does and both values."""
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        raise AssertionError(f"{what}: shape {g.shape}, expected {w.shape}")
    if g.dtype.kind != w.dtype.kind and not (g.dtype.kind in "iu" and w.dtype.kind in "iu"):
        raise AssertionError(f"{what}: dtype {g.dtype}, expected {w.dtype}")
    bad = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True) if g.dtype.kind in "fc" \
        else g != w
    if np.any(bad):
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: element {i} is {g[i]!r}, expected {w[i]!r} "
                             f"({int(bad.sum())} of {bad.size} elements differ)")


def expect_equal(got, want, what: str) -> None:
    """Assert got == want for plain values (tuples of ints, shapes, strides)."""
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, expected {want!r}")
