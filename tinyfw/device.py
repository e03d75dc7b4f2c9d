"""Devices: where a tensor's data lives.

A `Device` is a type and an optional index: ``cpu``, ``cuda[:N]``, ``meta`` (shape and
dtype only, no data) and ``check`` (the test suite's device: its arrays are not numpy
arrays, so any code path that bypasses the backend fails on it).  Which backend runs a
device type is looked up in `tinyfw.backend`; this file only names devices.
"""
from __future__ import annotations

import contextvars
import os

TYPES = ("cpu", "cuda", "meta", "check")


class Device:
    """A device, e.g. ``device('cpu')``, ``device('cuda:0')``, ``device('cuda', 1)``.

    As a context manager it is the default device of the factories inside the block, as in
    PyTorch: ``with tinyfw.device("meta"): model = GPT(...)`` builds a model without
    allocating it."""

    __slots__ = ("type", "index", "_tokens")

    def __init__(self, spec: "str | Device", index: int | None = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, colon, idx = spec.partition(":")
        if kind not in TYPES:
            raise ValueError(f"unknown device {spec!r}; expected one of 'cpu', 'cuda[:N]', "
                             "'meta', 'check'")
        if colon:
            if not idx.isdigit():
                raise ValueError(f"device {spec!r}: the index after ':' must be a "
                                 "non-negative integer")
            if index is not None:
                raise ValueError(f"device {spec!r}: the index is given twice")
            index = int(idx)
        if index is not None and (not isinstance(index, int) or index < 0):
            raise ValueError(f"device {spec!r}: index must be a non-negative int, got {index!r}")
        self.type = kind
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index or 0) == (other.type, other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __reduce__(self):
        return (Device, (str(self),))

    def __enter__(self) -> "Device":
        as_device(self)
        token = _default.set(self)
        try:
            self._tokens.append(token)
        except AttributeError:
            self._tokens = [token]
        return self

    def __exit__(self, *exc) -> bool:
        _default.reset(self._tokens.pop())
        return False


cpu = Device("cpu")
meta = Device("meta")
check = Device("check")

# TINYFW_DEVICE sets the process's default (the test suite runs once with 'check'); it is
# the ContextVar's default, so new threads see it too
_default = contextvars.ContextVar("tinyfw_default_device",
                                  default=Device(os.environ.get("TINYFW_DEVICE", "cpu")))


def as_device(d) -> Device:
    """A Device from a Device, a string or an int (a CUDA index, as in PyTorch); raises a
    clear error for a device whose backend is not available in this process."""
    if isinstance(d, Device):
        dev = d
    elif isinstance(d, int) and not isinstance(d, bool):
        dev = Device("cuda", d)
    else:
        dev = Device(d)
    from .backend import backend_for

    backend_for(dev)  # raises naming the device when it cannot run here
    return dev


def get_default_device() -> Device:
    """The device factories allocate on when no ``device=`` is given (cpu by default)."""
    return _default.get()


def set_default_device(device) -> None:
    """Set the device factories use when none is given (``None`` restores cpu)."""
    _default.set(cpu if device is None else as_device(device))
