"""The reference and error bound for the half-precision GEMM (csrc/gemm_half.h), and a
battery of cases that tests/test_half_gemm.py runs in this process (the default path) and
in subprocesses that force the other paths (``python tests/half_gemm_util.py``).

The bound, for C = A @ B with bf16/f16 A and B, products accumulated in float32 (in any
order) and rounded once to the half dtype: with e = sum_p a_p b_p (exact: computed in
float64, where each product of two half values is exact and k terms lose < k 2^-53),
and S = sum_p |a_p||b_p|,

    |c - e| <= gamma_k S (1 + u) + u |e| + k 2^-126 + tiny,

gamma_k = k 2^-24 / (1 - k 2^-24) the accumulation-order error in float32, u the half
dtype's unit roundoff (2^-8 bfloat16, 2^-11 float16) for the one rounding of the output,
k 2^-126 the subnormal partial sums that AMX and VDPBF16PS flush to zero, and tiny the
half dtype's smallest subnormal spacing / 2 (2^-25 float16; bfloat16 shares float32's
range, so its FTZ term covers it).  It depends on no machine's libm or BLAS.
"""
from __future__ import annotations

import json
import os
import sys

import ml_dtypes
import numpy as np

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
UNIT = {BF16: 2.0**-8, F16: 2.0**-11}
TINY = {BF16: 0.0, F16: 2.0**-25}


def exact_and_bound(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact product of half arrays a @ b (float64, broadcast batch dims) and the bound
    on |c - exact| of the module docstring."""
    dt = np.dtype(a.dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    e = np.matmul(a64, b64)
    s = np.matmul(np.abs(a64), np.abs(b64))
    k = a.shape[-1]
    g = k * 2.0**-24 / (1 - k * 2.0**-24)
    u = UNIT[dt]
    return e, g * s * (1 + u) + u * np.abs(e) + k * 2.0**-126 + TINY[dt]


def violations(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> str:
    """'' when c (the half product of a and b) is within the bound, else a description."""
    if c.dtype != a.dtype:
        return f"dtype {c.dtype}, expected {a.dtype}"
    e, bound = exact_and_bound(a, b)
    if c.shape != e.shape:
        return f"shape {c.shape}, expected {e.shape}"
    err = np.abs(c.astype(np.float64) - e)
    bad = ~(err <= bound)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        return (f"{bad.sum()} of {bad.size} outside the bound; at {i}: got {float(c[i])}, exact {e[i]}, "
                f"bound {bound[i]:.3g}")
    return ""


def operands(shape_a, shape_b, dtype, seed: int, layout: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Random half operands with the given shapes; layout "Ta"/"Tb" makes that operand a
    transposed view, "Sa"/"Sb" a strided (every other row and column) view."""
    rng = np.random.default_rng(seed)

    def make(shape, tag):
        if f"T{tag}" in layout and len(shape) >= 2:
            base = rng.standard_normal(shape[:-2] + (shape[-1], shape[-2])).astype(dtype)
            return np.swapaxes(base, -1, -2)
        if f"S{tag}" in layout and len(shape) >= 2:
            base = rng.standard_normal(shape[:-2] + (2 * shape[-2], 2 * shape[-1])).astype(dtype)
            return base[..., ::2, ::2]
        return rng.standard_normal(shape).astype(dtype)

    return make(tuple(shape_a), "a"), make(tuple(shape_b), "b")


# (shape of A, shape of B, layout): odd k, edges of every path's tile (12, 16, 32, 48 rows
# or columns), k crossing the slices (256, 512, 2048), row blocks past MC (AMX: 336 rows
# at k <= 1024, 144 at 2048) and the last rows joining the block before,
# empty dims, strided, transposed, batches.
CASES = [
    ((1, 1), (1, 1), ""), ((5, 3), (3, 7), ""), ((33, 65), (65, 31), ""), ((31, 33), (33, 47), "TaTb"),
    ((64, 64), (64, 64), ""), ((13, 1), (1, 17), ""), ((100, 1000), (1000, 70), ""),
    ((70, 513), (513, 45), "Ta"), ((45, 777), (777, 33), "Tb"), ((40, 300), (300, 50), "SaSb"),
    ((130, 1100), (1100, 10), ""), ((2, 4096), (4096, 3), ""), ((0, 5), (5, 4), ""),
    ((4, 0), (0, 6), ""), ((3, 5), (5, 0), ""), ((3, 1, 20, 37), (2, 37, 19), ""),
    ((4, 48, 96), (96, 40), "Ta"), ((200, 64), (64, 300), "Sb"),
    ((49, 64), (64, 65), ""), ((145, 97), (97, 96), ""), ((97, 2100), (2100, 40), ""), ((80, 4200), (4200, 40), ""),
    ((400, 64), (64, 40), ""), ((380, 64), (64, 33), "Ta"),
    # transposed operands with an even stride (16 x 16 transposes while packing: full and
    # partial B panels, k blocks of 32 and a tail; A tiles of 16 rows and a remainder)
    ((45, 768), (768, 33), "Tb"), ((20, 100), (100, 70), "TaTb"), ((100, 64), (64, 10), "Tb"),
    ((70, 130), (130, 96), "TaTb"),
    # at most 16 columns: the float32 GEMM over converted blocks of A (two blocks of rows
    # here), B in every layout; 17 columns take the half paths again
    ((700, 600), (600, 10), "Ta"), ((600, 700), (700, 16), "Tb"), ((24, 300), (300, 12), "SaSb"),
    ((130, 64), (64, 1), "TaTb"), ((50, 40), (40, 17), ""),
    # row-major A packed for VDPBF16PS 16 k pairs at a time: 12-row panels and a short one
    ((37, 97), (97, 40), ""), ((24, 64), (64, 64), ""),
]


def battery(seed: int = 0) -> list[str]:
    """Every CASE in both half dtypes, checked against the bound: the failures."""
    from tinyfw import _C

    out = []
    for dtype in (BF16, F16):
        for i, (sa, sb, layout) in enumerate(CASES):
            a, b = operands(sa, sb, dtype, seed + i, layout)
            why = violations(_C.matmul(a, b), a, b)
            if why:
                out.append(f"{dtype} {sa} @ {sb} {layout}: {why}")
    return out


if __name__ == "__main__":  # the battery under this process's environment (TINYFW_ISA, ...)
    from tinyfw.backend import cpu

    info = cpu.isa_info()
    print(json.dumps({"isa": info["isa"], "half_gemm": info["half_gemm"], "amx": info["amx"],
                      "failures": battery(int(os.environ.get("SEED", "0")))}))
    sys.exit(0)
