"""The CUDA backend's entry point: whether ``cuda`` devices can run in this process.

The kernels, the device memory allocator and the array type live in ``tinyfw._cuda``
(built from ``cuda/`` when nvcc is found); until that module is built and a GPU is
present, every ``cuda`` device reports why it is unavailable and tensors cannot be
created on it.  See docs/devices.md for what the module provides.
"""
from __future__ import annotations


def _load():
    try:
        from .. import _cuda
    except ImportError as e:
        return None, ("the CUDA backend is not available in this build (tinyfw._cuda was not "
                      "compiled: rebuild with nvcc on the PATH); use device='cpu'")
    n = _cuda.device_count()
    if n == 0:
        return None, "the CUDA backend is not available: tinyfw._cuda sees no CUDA device"
    return _cuda, ""


_cuda, _why = _load()


def unavailable(device) -> str:
    """Why `device` cannot run here ('' when it can)."""
    if _why:
        return _why
    index = device.index or 0
    count = _cuda.device_count()
    if index >= count:
        return f"CUDA device index {index} is out of range ({count} device(s))"
    return ""


def __getattr__(name: str):
    # the primitives and contract come from tinyfw._cuda once it exists
    if _cuda is None:
        raise AttributeError(f"the CUDA backend is not available: {_why}")
    return getattr(_cuda, name)
