"""``tinyfw.cuda``: CUDA devices, streams, events, memory statistics and pinned memory,
with the names ``torch.cuda`` uses.

Everything here works without a GPU as far as it can: `is_available()` is False and
`unavailable_reason()` says why; functions that need a device raise RuntimeError with
that reason.  The kernels and the allocator are in ``tinyfw._cuda`` (cuda/, docs/cuda.md).
"""
from __future__ import annotations

import contextlib

from .backend import cuda as _backend

__all__ = ["is_available", "unavailable_reason", "device_count", "current_device", "set_device",
           "synchronize", "get_device_name", "get_device_properties", "Stream", "Event", "stream",
           "current_stream", "default_stream", "memory_allocated", "max_memory_allocated",
           "memory_reserved", "empty_cache", "reset_peak_memory_stats", "memory_stats",
           "memory_summary", "pin_memory", "is_pinned", "manual_seed"]


def is_available() -> bool:
    """True when tinyfw._cuda is built and sees at least one CUDA device."""
    return not _backend._why


def unavailable_reason() -> str:
    """Why CUDA cannot be used here ('' when it can)."""
    return _backend._why


def _C():
    if _backend._why:
        raise RuntimeError(f"CUDA is not available: {_backend._why}")
    return _backend._cuda


def device_count() -> int:
    """The number of CUDA devices (0 without a build or a driver)."""
    return 0 if _backend._cuda is None else _backend._cuda.device_count()


def current_device() -> int:
    """The index of the device new cuda arrays are made on."""
    return _C().current_device()


def set_device(index: int) -> None:
    """Make device `index` current."""
    n = device_count()
    if not 0 <= index < n:
        raise ValueError(f"set_device: device index {index} out of range ({n} device(s))")
    _C().set_device(index)


def synchronize() -> None:
    """Wait for every kernel queued on the current device."""
    _C().synchronize()


def get_device_name(index: int | None = None) -> str:
    """The device's marketing name, e.g. 'NVIDIA H100 80GB HBM3'."""
    return _C().device_name(current_device() if index is None else index)


def get_device_properties(index: int | None = None) -> dict:
    """name, total_memory, multi_processor_count, major, minor, l2_cache_size,
    memory_bus_width (bits), memory_clock_khz."""
    return dict(_C().device_properties(current_device() if index is None else index))


# -- streams and events ----------------------------------------------------------------------
class Stream:
    """A CUDA stream: kernels queued on one stream run in order; kernels on different
    streams may overlap.  ``with stream:`` (or ``tinyfw.cuda.stream(s)``) makes it the
    current stream, which every kernel and allocation of this thread then uses.

    Memory made on one stream and used on another must be announced with
    `record_stream` (as in PyTorch), or the allocator may reuse it too early."""

    def __init__(self, priority: int = 0, _handle: int | None = None):
        self._owned = False  # set once a stream was made: __del__ then destroys it
        self.handle = _C().stream_create(priority) if _handle is None else _handle
        self._owned = _handle is None
        self._prev: list[int] = []

    def synchronize(self) -> None:
        """Wait for the kernels queued on this stream."""
        _C().stream_synchronize(self.handle)

    def query(self) -> bool:
        """True when every kernel queued on it has finished."""
        return _C().stream_query(self.handle)

    def record_event(self, event: "Event | None" = None) -> "Event":
        """Record `event` (a new one by default) at this point of the stream."""
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: "Event") -> None:
        """Make later work on this stream wait for `event`."""
        _C().stream_wait_event(self.handle, event.handle)

    def wait_stream(self, other: "Stream") -> None:
        """Make later work on this stream wait for what is queued on `other` now."""
        self.wait_event(other.record_event())

    def __enter__(self) -> "Stream":
        self._prev.append(_C().current_stream())
        _C().set_current_stream(self.handle)
        return self

    def __exit__(self, *exc) -> None:
        _C().set_current_stream(self._prev.pop())

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and other.handle == self.handle

    def __hash__(self) -> int:
        return hash(self.handle)

    def __del__(self) -> None:
        if getattr(self, "_owned", False) and _backend._cuda is not None:
            _backend._cuda.stream_destroy(self.handle)

    def __repr__(self) -> str:
        return f"tinyfw.cuda.Stream(handle={self.handle:#x})"


def current_stream() -> Stream:
    """The stream this thread's kernels go to on the current device."""
    return Stream(_handle=_C().current_stream())


def default_stream() -> Stream:
    """The device's default (legacy) stream."""
    return Stream(_handle=0)


@contextlib.contextmanager
def stream(s: Stream | None):
    """Within the block, `s` is the current stream (None: no change)."""
    if s is None:
        yield
        return
    with s:
        yield


class Event:
    """A marker in a stream: wait for it, or time the work between two of them."""

    def __init__(self, enable_timing: bool = False):
        self.enable_timing = enable_timing
        self.handle = _C().event_create(enable_timing)

    def record(self, stream: Stream | None = None) -> None:
        """Mark the current point of `stream` (the current stream by default)."""
        _C().event_record(self.handle, (stream or current_stream()).handle)

    def synchronize(self) -> None:
        """Wait until the work before the recorded point finished."""
        _C().event_synchronize(self.handle)

    def query(self) -> bool:
        """True when that work finished."""
        return _C().event_query(self.handle)

    def wait(self, stream: Stream | None = None) -> None:
        """Make later work on `stream` wait for this event."""
        (stream or current_stream()).wait_event(self)

    def elapsed_time(self, end: "Event") -> float:
        """Milliseconds from this event to `end` (both recorded with enable_timing=True,
        `end` completed: call end.synchronize() first)."""
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("elapsed_time: both events need enable_timing=True")
        return _C().event_elapsed_ms(self.handle, end.handle)

    def __del__(self) -> None:
        if _backend._cuda is not None and hasattr(self, "handle"):
            _backend._cuda.event_destroy(self.handle)


# -- memory -------------------------------------------------------------------------------------
def _stats(device) -> dict:
    c = _C()
    if device is not None:
        index = device if isinstance(device, int) else getattr(device, "index", None)
        if index is None and isinstance(device, str):
            index = int(device.split(":")[1]) if ":" in device else None
        if index is not None:
            return dict(c.memory_stats(index))
    return dict(c.memory_stats(c.current_device()))


def memory_allocated(device=None) -> int:
    """Bytes of device memory held by live tensors (block sizes, rounded to 512)."""
    return _stats(device)["allocated"]


def max_memory_allocated(device=None) -> int:
    """Peak of memory_allocated since start or reset_peak_memory_stats."""
    return _stats(device)["max_allocated"]


def memory_reserved(device=None) -> int:
    """Bytes the caching allocator holds from cudaMalloc, in use or cached."""
    return _stats(device)["reserved"]


def memory_stats(device=None) -> dict:
    """All the allocator's counters (docs/cuda.md lists them)."""
    return _stats(device)


def empty_cache() -> None:
    """Give the cached, wholly free segments back to the driver (other processes can use
    them); live tensors are untouched."""
    _C().empty_cache(current_device())


def reset_peak_memory_stats(device=None) -> None:
    """Restart the peaks from the current figures."""
    _C().reset_peak(current_device() if device is None else int(device))


def memory_summary(device=None) -> str:
    """A table of the allocator's figures, like torch.cuda.memory_summary()."""
    s = _stats(device)
    mib = lambda b: f"{b / 2 ** 20:12.1f} MiB"  # noqa: E731
    rows = [("allocated (live tensors)", mib(s["allocated"])),
            ("allocated, peak", mib(s["max_allocated"])),
            ("reserved (from cudaMalloc)", mib(s["reserved"])),
            ("reserved, peak", mib(s["max_reserved"])),
            ("cached, free", mib(s["reserved"] - s["allocated"])),
            ("pinned host memory", mib(s["pinned_reserved"])),
            ("allocations", f"{s['allocations']:16d}"),
            ("cudaMalloc calls", f"{s['cuda_mallocs']:16d}"),
            ("block splits", f"{s['splits']:16d}"),
            ("free blocks", f"{s['free_blocks']:16d}"),
            ("out-of-memory retries failed", f"{s['ooms']:16d}")]
    w = max(len(r[0]) for r in rows)
    line = "=" * (w + 20)
    body = "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
    return f"{line}\n tinyfw CUDA memory, device {current_device() if device is None else device}\n{line}\n{body}\n{line}"


# -- pinned host memory ----------------------------------------------------------------------------
def _pin_tensor(t):
    import numpy as np

    from .tensor import Tensor

    if not isinstance(t, Tensor) or t.device.type != "cpu" or is_pinned(t):
        return t
    a = t.detach().numpy()
    raw = _C().pinned_empty(max(a.nbytes, 1))
    p = raw[:a.nbytes].view(a.dtype).reshape(a.shape)
    np.copyto(p, a)
    from .creation import from_numpy

    return from_numpy(p)


def pin_memory(x):
    """A copy of CPU tensor x (or of every tensor in a tuple/list/dict batch) in
    page-locked host memory, so that its ``.to('cuda')`` is an asynchronous DMA copy."""
    if isinstance(x, (list, tuple)):
        return type(x)(pin_memory(v) for v in x)
    if isinstance(x, dict):
        return {k: pin_memory(v) for k, v in x.items()}
    return _pin_tensor(x)


def is_pinned(t) -> bool:
    """True when CPU tensor t's memory is pinned by tinyfw.cuda.pin_memory."""
    import numpy as np

    from .tensor import Tensor

    a = t.detach().numpy() if isinstance(t, Tensor) and t.device.type == "cpu" else None
    while isinstance(a, np.ndarray):
        a = a.base
    return type(a).__name__ == "PyCapsule"


def manual_seed(seed: int) -> None:
    """Seed the generator CUDA kernels draw their seeds from (tinyfw's default
    generator, shared with the CPU, as tinyfw.manual_seed)."""
    from .random import manual_seed as _seed

    _seed(seed)
