"""The ISA levels of the C++ kernels and their compiler flags: one table for setup.py
(which loads this file by path, before tinyfw is importable) and for the C code the
traced mode compiles at run time (tinyfw/jit/kernels.py), so both target the same level.

``scalar`` is baseline x86-64 (SSE2), ``avx2`` is x86-64-v3 (AVX2, FMA, F16C, BMI1/2,
LZCNT, MOVBE), ``avx512`` is x86-64-v4 (+ AVX-512 F/CD/BW/DQ/VL).  The AVX-512 level keeps
256-bit vectors for the compiler's own vectorisation (what GCC chooses for Intel's
AVX-512 CPUs, and what -march=native gave on them); intrinsics code uses 512-bit vectors
where it says so.  ``native`` is the single level of a ``TINYFW_NATIVE=1`` build.
"""
from __future__ import annotations

LEVELS = ("scalar", "avx2", "avx512", "native")  # ascending; the index is TINYFW_ISA_LEVEL

FLAGS = {
    "scalar": ["-march=x86-64", "-mtune=generic"],
    "avx2": ["-march=x86-64-v3", "-mtune=generic"],
    "avx512": ["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=256"],
    "native": ["-march=native"],
}


def flags(level: str, x86: bool = True) -> list[str]:
    """The compiler flags selecting `level` (none off x86, where only scalar exists)."""
    if level not in FLAGS:
        raise ValueError(f"unknown ISA level {level!r}; expected one of {', '.join(LEVELS)}")
    return list(FLAGS[level]) if x86 else []
