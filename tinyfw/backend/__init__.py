"""Backends: one per device type, each a module of primitive kernels on its own arrays.

- ``ref`` — numpy, the readable specification (`ref.py`, `ref_data.py`, `ref_nn.py`, `ref_optim.py`);
- ``cpu`` — the C++ kernels of ``tinyfw._C`` where they exist, ``ref`` for the rest;
- ``meta`` — shapes and dtypes only (`meta.py`);
- ``check`` — the reference kernels behind arrays that are not numpy arrays (`check.py`),
  so the test suite proves that nothing reaches numpy around the backend;
- ``cuda`` — `cuda.py`, when ``tinyfw._cuda`` is built and a GPU is present.

A CPU tensor's array is a numpy array and runs on the CPU backend chosen with
``set_cpu_backend('cpu' | 'ref')``.  Every other device's array is an object of the
backend's own class with ``shape``, ``dtype`` (a numpy dtype, as metadata), ``ndim``,
``size``, ``itemsize``, ``strides`` (bytes), ``device`` and ``backend`` attributes; all else
goes through the backend's functions.  The contract (primitives, allocation, host
transfer, views, synchronisation) is written down in ``docs/devices.md``; one conformance
suite runs every primitive of every available backend against ``ref``.
"""
from __future__ import annotations

import importlib

import numpy as np

from ..device import Device

NAMES = ("ref", "cpu")
#: the array type of CPU tensors (the dispatcher's fast path tests for it)
CPU_ARRAY = np.ndarray

_cpu = None  # the module that runs CPU tensors
# device type -> module path of its backend (loaded on first use)
_DEVICE_MODULES = {"meta": "meta", "check": "check", "cuda": "cuda"}
_loaded: dict = {}


def load(name: str):
    """Import and return the CPU backend module called `name` ('ref' or 'cpu')."""
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {NAMES} "
                         "(set TINYFW_BACKEND or call tinyfw.set_backend)")
    return importlib.import_module(f"{__name__}.{name}")


def set_cpu_backend(name: str):
    """Run CPU tensors with backend `name` ('cpu': C++ kernels, 'ref': numpy); returns it."""
    global _cpu
    _cpu = load(name)
    return _cpu


def cpu_backend():
    """The module that runs CPU tensors now."""
    return _cpu


def backend_for(device: Device):
    """The backend module that runs tensors on `device`; raises naming the device when
    that device type cannot run in this process (e.g. no CUDA build or no GPU)."""
    kind = device.type
    if kind == "cpu":
        return _cpu
    mod = _loaded.get(kind)
    if mod is None:
        mod = importlib.import_module(f"{__name__}.{_DEVICE_MODULES[kind]}")
        _loaded[kind] = mod
    why = mod.unavailable(device)
    if why:
        raise RuntimeError(f"device {str(device)!r} is not available: {why}")
    return mod


def device_of(a) -> Device:
    """The device an array lives on."""
    return _CPU_DEVICE if type(a) is CPU_ARRAY else a.device


def backend_of(a):
    """The backend that owns array `a`."""
    return _cpu if type(a) is CPU_ARRAY else a.backend


#: array classes of backends whose arrays' device is per instance (cuda:0, cuda:1, ...), so
#: not a class attribute; a backend adds its class when it loads
DEVICE_ARRAY_TYPES: set = set()


def is_array(a) -> bool:
    """Whether `a` is an array of some backend (a numpy array or a device array)."""
    t = type(a)
    return t is CPU_ARRAY or isinstance(getattr(t, "device", None), Device) or t in DEVICE_ARRAY_TYPES


def primitives(module) -> dict:
    """The primitive functions a backend module defines, by name."""
    return {k: v for k, v in vars(module).items()
            if callable(v) and not k.startswith("_") and k not in CONTRACT
            and getattr(v, "__module__", "").startswith(("tinyfw.backend", "tinyfw._C"))}


#: functions every backend provides besides the primitives (see docs/devices.md)
CONTRACT = ("unavailable", "from_host", "to_host", "empty", "full", "view", "permute",
            "expand", "slice_view", "is_contiguous", "is_writeable", "memory_owner", "is_dense",
            "synchronize", "memory_allocated", "max_memory_allocated", "memory_reserved",
            "empty_cache", "reset_peak_memory_stats", "as_strided", "storage_offset")

_CPU_DEVICE = Device("cpu")
