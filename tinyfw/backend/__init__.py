"""Backends: modules of primitive kernels on raw arrays, one contract for all.

- ``ref`` — numpy, the readable specification (`ref.py`, `ref_nn.py`);
- ``cpu`` — the C++ kernels of ``tinyfw._C`` where they exist, ``ref`` for the rest.

A backend is a module; a primitive is a function in it with the signature documented in
``ref``.  The conformance tests run every primitive of every loaded backend against ref.
"""
from __future__ import annotations

import importlib

NAMES = ("ref", "cpu")


def load(name: str):
    """Import and return the backend module called `name`."""
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {NAMES} "
                         "(set TINYFW_BACKEND or call tinyfw.set_backend)")
    return importlib.import_module(f"{__name__}.{name}")


def primitives(module) -> dict:
    """The primitive functions a backend module defines, by name."""
    return {k: v for k, v in vars(module).items()
            if callable(v) and not k.startswith("_") and getattr(v, "__module__", "").startswith(
                ("tinyfw.backend", "tinyfw._C"))}
