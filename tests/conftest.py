"""Test configuration: hypothesis profiles and the PyTorch oracle.

Profiles: ``fast`` (default, keeps the suite under a few minutes on 2 cores) and
``thorough`` (``TINYFW_HYPOTHESIS=thorough``: many more examples per property).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TINYFW_HYPOTHESIS", "fast"))


@pytest.fixture(autouse=True)
def _keep_backend():
    """A test that switches backends must not leak the switch into the tests after it
    (the suite runs once per backend, chosen by TINYFW_BACKEND)."""
    from tinyfw import dispatch

    before = dispatch.get_backend().__name__.rsplit(".", 1)[-1]
    yield
    if dispatch.get_backend().__name__.rsplit(".", 1)[-1] != before:
        dispatch.set_backend(before)


@pytest.fixture
def on_the_cpu():
    """Run a test with the CPU as the default device whatever the suite's device: for tests
    of the traced mode's CPU-only passes (generated C kernels, numpy arena buffers), which
    graphs on other devices skip (test_jit.py and test_jit_training*.py check those)."""
    import tinyfw

    with tinyfw.device("cpu"):
        yield
