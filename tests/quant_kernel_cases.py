"""Cases for the int8 kernels of tinyfw._C against the reference primitives (ref_quant),
shared by tests/test_quant_kernels.py and its subprocess runs at other ISA levels.

Run as a script (``python tests/quant_kernel_cases.py``) it checks a fixed battery on
every int8 GEMM path of the ISA level this process runs and prints a JSON report."""
from __future__ import annotations

import numpy as np


def same(got, want) -> None:
    """Bit-exact equality (float32 outputs compared as bits, so -0.0 != 0.0)."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if got.dtype == np.float32:
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    else:
        np.testing.assert_array_equal(got, want)


def layout(rng, a: np.ndarray, kind: str) -> np.ndarray:
    """`a`'s values in another memory layout: "c" as is, "t" a transposed copy read back
    transposed, "s" every other column of a wider array, "r" rows reversed."""
    if kind == "t":
        return np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    if kind == "s":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if kind == "r":
        return np.ascontiguousarray(a[::-1])[::-1]
    return a


def qlinear_case(rng, m, k, n, x_zp, out, relu, has_bias, xl="c", wl="c"):
    """(args, kwargs) of qlinear: random codes, per-channel scales, optional bias."""
    x = layout(rng, rng.integers(0, 256, (m, k)).astype(np.uint8), xl)
    w = layout(rng, rng.integers(-128, 128, (n, k)).astype(np.int8), wl)
    ws = rng.uniform(1e-4, 0.05, n).astype(np.float32)
    b = (rng.standard_normal(n) * 4).astype(np.float32) if has_bias else None
    os_, oz = out if out else (None, 0)
    return (x, float(np.float32(rng.uniform(1 / 512, 0.1))), x_zp, w, ws, b, os_, oz, relu)


def qconv_case(rng, n, cin, groups, h, w, kh, kw, stride, pad, dil, x_zp, out, relu, has_bias, o_per_group=3):
    o = o_per_group * groups
    x = rng.integers(0, 256, (n, cin, h, w)).astype(np.uint8)
    wq = rng.integers(-128, 128, (o, cin // groups, kh, kw)).astype(np.int8)
    ws = rng.uniform(1e-4, 0.05, o).astype(np.float32)
    b = (rng.standard_normal(o) * 4).astype(np.float32) if has_bias else None
    os_, oz = out if out else (None, 0)
    return (x, float(np.float32(rng.uniform(1 / 512, 0.1))), x_zp, wq, ws, b, stride, pad, dil, groups, os_, oz,
            relu)


def battery(seed: int = 0) -> int:
    """A fixed set of qlinear / qconv2d cases on the current path; returns how many ran."""
    from tinyfw.backend import cpu, ref

    rng = np.random.default_rng(seed)
    count = 0
    for m, k, n in [(1, 1, 1), (3, 7, 5), (17, 33, 31), (33, 65, 47), (64, 130, 70), (40, 257, 16)]:
        for out in (None, (0.05, 7), (0.5, 250)):
            for zp in (0, 128, 255):
                args = qlinear_case(rng, m, k, n, zp, out, bool(count % 2), count % 3 != 0,
                                    "cst"[count % 3], "cts"[count % 3])
                same(cpu.qlinear(*args), ref.qlinear(*args))
                count += 1
    for geo in [(2, 3, 1, 9, 8, 3, 3, (1, 1), (1, 1), (1, 1)), (1, 4, 2, 7, 9, 3, 2, (2, 1), (0, 1), (1, 2)),
                (3, 6, 3, 5, 5, 1, 1, (1, 1), (0, 0), (1, 1)), (2, 16, 1, 6, 6, 3, 3, (1, 1), (2, 2), (2, 2))]:
        args = qconv_case(rng, *geo, x_zp=int(rng.integers(0, 256)), out=(0.07, 3), relu=True, has_bias=True)
        same(cpu.qconv2d(*args), ref.qconv2d(*args))
        count += 1
    return count


if __name__ == "__main__":
    import json

    from tinyfw import _C
    from tinyfw.backend import cpu

    report = {"isa": cpu.isa(), "paths": {}}
    for path in ("amx-int8", "avx512-vnni", "avx-vnni", "avx2", "scalar"):
        try:
            _C._set_int8_gemm_path(path)
        except RuntimeError as e:
            report["paths"][path] = f"skipped: {e}"
            continue
        assert _C._int8_gemm_path() == path
        report["paths"][path] = battery()
    _C._set_int8_gemm_path(None)
    print(json.dumps(report))
