"""Memory statistics and the caching allocator, per device, with the names PyTorch's
``torch.cuda`` memory functions have.

On the CPU, large kernel outputs (>= 64 KiB) come from a caching allocator that keeps
freed blocks for reuse instead of returning them to the OS (which made the next step's
arrays page-fault); the figures count those blocks.  Devices without an allocator of their
own (meta, check) report 0.
"""
from __future__ import annotations

from .backend import backend_for
from .device import as_device, get_default_device

__all__ = ["memory_allocated", "max_memory_allocated", "memory_reserved", "empty_cache",
           "reset_peak_memory_stats", "memory_stats"]


def _backend(device):
    return backend_for(get_default_device() if device is None else as_device(device))


def memory_allocated(device=None) -> int:
    """Bytes held by live tensors through the device's allocator."""
    return _backend(device).memory_allocated()


def max_memory_allocated(device=None) -> int:
    """Peak of memory_allocated since start or the last reset."""
    return _backend(device).max_memory_allocated()


def memory_reserved(device=None) -> int:
    """Bytes the device's allocator holds, in use or cached."""
    return _backend(device).memory_reserved()


def empty_cache(device=None) -> None:
    """Give the allocator's cached blocks back to the system."""
    _backend(device).empty_cache()


def reset_peak_memory_stats(device=None) -> None:
    """Restart max_memory_allocated from the live bytes."""
    _backend(device).reset_peak_memory_stats()


def memory_stats(device=None) -> dict:
    """The allocator's counters: allocated, max_allocated, reserved (and hits, misses,
    cached, cap where the allocator keeps them)."""
    B = _backend(device)
    stats = getattr(B, "memory_stats", None)
    if stats is not None:
        return stats()
    return {"allocated": B.memory_allocated(), "max_allocated": B.max_memory_allocated(),
            "reserved": B.memory_reserved()}
