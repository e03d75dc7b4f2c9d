"""Devices: where a tensor's data lives."""
from __future__ import annotations


class Device:
    """A device, e.g. ``Device('cpu')`` or ``Device('cuda:0')``."""

    __slots__ = ("type", "index")

    def __init__(self, spec: "str | Device", index: int | None = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}; expected 'cpu' or 'cuda[:N]'")
        self.type = kind
        self.index = int(idx) if idx else index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and (self.type, self.index or 0) == (other.type, other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


cpu = Device("cpu")


def as_device(d) -> Device:
    """Accept a Device or a string; raise a clear error for devices that are not here."""
    dev = d if isinstance(d, Device) else Device(d)
    if dev.type == "cuda":
        raise RuntimeError(f"device {str(dev)!r}: the CUDA backend is not available in this "
                           "build (no GPU or tinyfw._cuda not compiled); use device='cpu'")
    return dev
