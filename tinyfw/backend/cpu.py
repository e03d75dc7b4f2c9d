"""The CPU backend: C++ kernels from ``tinyfw._C`` override the reference primitives.

Every primitive of ``ref`` is available here; those with a compiled kernel run it, the
rest fall back to numpy.  ``KERNELS`` names the primitives that are compiled.

The build holds the kernels for several ISA levels (scalar, avx2, avx512); importing
``_C`` picks the best one this CPU and OS can run, or the one ``TINYFW_ISA`` names
(``isa()``, ``isa_info()``).
"""
from __future__ import annotations

from .ref import *  # noqa: F401,F403
from . import ref as _ref

KERNELS: tuple = ()


def isa() -> str | None:
    """The ISA level of the C++ kernels this process runs: ``"scalar"``, ``"avx2"``,
    ``"avx512"`` (``"native"`` in a ``TINYFW_NATIVE=1`` build); None without ``_C``."""
    return _C.isa() if _C is not None else None


def isa_info() -> dict:
    """How the ISA level was chosen: ``isa`` (the level), ``forced`` (``TINYFW_ISA`` or
    None), ``built`` (the levels in this build), ``usable`` (those this machine can run),
    ``features`` (CPU features from cpuid, plus ``os_ymm_state``/``os_zmm_state`` when the
    OS saves those registers; ``TINYFW_ISA_HIDE=avx512f,...`` hides some, for tests),
    ``required`` (what the chosen level needs), ``levels`` (what each built level needs),
    ``cpu`` (the CPU's brand string), ``xcr0``, ``half_gemm`` (the bf16 / float16 GEMM
    path per dtype: ``"amx-bf16"``, ``"avx512-bf16"`` or ``"f32-pack"``) and ``amx`` (None
    when AMX tiles are used, else why not: the CPU, ``TINYFW_AMX=0``, XCR0, or Linux's
    refusal of the tile state).  Empty without ``_C``."""
    return dict(_C.isa_info()) if _C is not None else {}


def isa_cflags() -> list[str]:
    """C compiler flags targeting the kernels' ISA level, for C generated at run time
    (the traced mode's kernels): a forced lower level must not get AVX-512 code.  The
    scalar level's flags without ``_C``."""
    import platform

    from ._isa import flags

    return flags(isa() or "scalar", platform.machine().lower() in ("x86_64", "amd64"))


def _load_C():
    # OpenMP workers wait for the next parallel region by spinning a bounded number of
    # times, then sleeping (GOMP_SPINCOUNT=10000: well under a millisecond).  Spinning
    # forever (libgomp's ACTIVE) stole the cores from everything else on a shared machine
    # (PyTorch's pool in the same process, other jobs) and tiny kernels took milliseconds;
    # sleeping at once (PASSIVE) made every parallel region pay a wake-up, ~50 us on a
    # 2-vCPU VM: a 1.3 MFLOP product of an MLP's backward took 69 us at 2 threads against
    # 17 us at 1.  The bounded spin keeps the team warm during a burst of kernels (11 us).
    # libgomp reads these once, when it loads with _C; a user's OMP_WAIT_POLICY or
    # GOMP_SPINCOUNT wins, and the environment is restored so other libraries see it as it was.
    import os
    import warnings

    prev = os.environ.get("GOMP_SPINCOUNT")
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    try:
        from .. import _C
        return _C
    except ModuleNotFoundError:  # not built: the reference primitives serve alone
        return None
    except ImportError as e:
        if str(e).startswith("TINYFW_ISA"):  # a level that cannot run here: the user's error
            raise
        # built but broken: say so instead of silently going slow
        warnings.warn(f"tinyfw._C failed to load ({e}); the cpu backend runs the numpy "
                      "reference primitives instead", RuntimeWarning, stacklevel=2)
        return None
    finally:
        if prev is None:
            os.environ.pop("GOMP_SPINCOUNT", None)


_C = _load_C()
if _C is not None:
    from ._cpu_bind import install as _install, needs_ref as _needs_ref  # noqa: F401
    from .ref_device import _fill_new

    KERNELS = _install(globals(), _ref)

    def full(shape: tuple, value, dtype):
        """ref's `full` in an array of the caching allocator: a large numpy allocation is
        mmap'd and page-faults on first touch, every step (the gradient of a slice fills
        one the size of its input: 6 of 786 KiB per char-LM training step)."""
        return _fill_new(empty(shape, dtype), value)


if _C is not None:
    # the caching allocator of the C++ kernels' outputs (csrc/pool.cpp); TINYFW_POOL=0
    # turns it off, TINYFW_POOL_CAP caps the bytes it keeps cached
    import os as _os

    _C.pool_configure(enabled=_os.environ.get("TINYFW_POOL", "1") != "0",
                      cap=int(_os.environ["TINYFW_POOL_CAP"]) if "TINYFW_POOL_CAP" in _os.environ
                      else None)

    def memory_allocated() -> int:
        """Bytes of live arrays from the caching allocator (arrays below its 64 KiB floor
        and numpy's own allocations are not counted)."""
        return _C.pool_stats()["allocated"]

    def max_memory_allocated() -> int:
        """Peak of memory_allocated since start or the last reset_peak_memory_stats."""
        return _C.pool_stats()["max_allocated"]

    def memory_reserved() -> int:
        """Bytes the allocator holds: live plus cached."""
        return _C.pool_stats()["reserved"]

    def empty_cache() -> None:
        """Return the cached blocks to the system."""
        _C.pool_empty_cache()

    def reset_peak_memory_stats() -> None:
        """Restart max_memory_allocated from the live bytes."""
        _C.pool_reset_peak()

    def memory_stats() -> dict:
        """All counters of the caching allocator (bytes, hits, misses, cap, enabled)."""
        return dict(_C.pool_stats())

    def set_caching_allocator(enabled: bool | None = None, cap: int | None = None) -> None:
        """Switch the caching allocator on/off and/or set its cap on cached bytes."""
        _C.pool_configure(enabled=enabled, cap=cap)
