"""The OpenMP wait policy the cpu backend gives libgomp when tinyfw._C loads
(tinyfw/backend/cpu.py): workers spin a bounded number of times (GOMP_SPINCOUNT=10000)
unless the user chose a policy, and the environment is left as it was for other libraries.
libgomp reports what it read with OMP_DISPLAY_ENV=VERBOSE (on stderr, once, at load)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tinyfw.backend import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built")

CODE = ("import os, tinyfw.backend.cpu\n"
        "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")


def _load(**env) -> tuple[str, str]:
    """(what libgomp read, the environment after import) for an import of tinyfw."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120,
                       env={**base, **env, "OMP_DISPLAY_ENV": "VERBOSE", "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr[-2000:]
    if "GOMP_SPINCOUNT" not in r.stderr:
        pytest.skip("the OpenMP runtime is not libgomp (no GOMP_SPINCOUNT in its report)")
    read = next(ln for ln in r.stderr.splitlines() if "GOMP_SPINCOUNT" in ln)
    return read.split("=", 1)[1].strip(" '"), r.stdout.strip()


def test_a_bounded_spin_by_default_and_the_environment_restored():
    read, after = _load()
    assert read == "10000"
    assert after == "None None"


@pytest.mark.parametrize("env,want", [({"OMP_WAIT_POLICY": "PASSIVE"}, "0"),
                                      ({"OMP_WAIT_POLICY": "ACTIVE"}, "30000000000"),
                                      ({"GOMP_SPINCOUNT": "77"}, "77")])
def test_the_users_choice_wins(env, want):
    read, after = _load(**env)
    assert read == want
    assert after == f"{env.get('GOMP_SPINCOUNT')} {env.get('OMP_WAIT_POLICY')}"
