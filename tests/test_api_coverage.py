"""Issue 16's coverage measure (tools/api_coverage.py): it runs, its exclusions are only
the reasoned categories, and every name it counts as implemented is exercised by the test
suite (named as an attribute, ``.name`` or ``F.name``, in some test file) — an op added
without a test shows up here."""
from __future__ import annotations

import pathlib
import re
import sys

import pytest

from helpers import requires_torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import api_coverage  # noqa: E402

pytestmark = requires_torch


def _test_text() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))


def _generated_names() -> set:
    """Names that test modules parametrize over from a table of the implementation (each
    is run by that module's tests, but spelled nowhere): their NAMES lists."""
    import importlib

    out: set = set()
    for mod in ("test_api_elementwise_inplace",):
        out |= set(importlib.import_module(mod).NAMES)
    return out


def test_every_exclusion_has_an_allowed_reason():
    allowed = {api_coverage.COMPLEX, api_coverage.SPARSE, api_coverage.QUANT,
               api_coverage.OVERRIDE, api_coverage.DEPRECATED, api_coverage.UNSAFE}
    assert set(api_coverage.EXCLUDED.values()) <= allowed
    unsafe = [n for n, why in api_coverage.EXCLUDED.items() if why == api_coverage.UNSAFE]
    assert all(n.startswith("unsafe_") for n in unsafe)


def test_every_implemented_name_is_exercised_by_a_test():
    text = _test_text()
    generated = _generated_names()
    untested = []
    for list_name, c in api_coverage.coverage().items():
        for name in c["have"]:
            if name in generated:
                continue
            # as an attribute (x.name, tinyfw.name, F.name, nn.Name, linalg.name) or a
            # case id of tests/op_table.py ("name" or "name-variant")
            pat = rf"(\.{re.escape(name)}\b|[\"']{re.escape(name)}[\"'-])"
            if not re.search(pat, text):
                untested.append(f"{list_name}: {name}")
    assert not untested, "implemented but never named in tests/: " + ", ".join(untested)


def test_the_report_prints_four_fractions(capsys):
    assert api_coverage.main([]) == 0
    out = capsys.readouterr().out
    for list_name in ("tensor ops", "functional", "nn modules", "linalg"):
        assert re.search(rf"{list_name}\s+\d+ / \d+\s+\d+\.\d%", out), out
