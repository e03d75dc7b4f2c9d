"""Checks of the channels-last kernels (csrc/layout_conv.cpp, csrc/layout_ops.cpp) against
the NCHW reference ops, shared by tests/test_jit_layout.py and its runs at lower ISA
levels (``python tests/layout_kernel_cases.py`` under ``TINYFW_ISA=avx2`` prints a JSON
report as its last line).

Sums are checked against a float64 evaluation with the classic bound of a recursive
(or blocked, or FMA) sum of K products, whatever its order: |computed - exact| <=
gamma(K) * sum |x_i w_i| with gamma(K) = K u / (1 - K u), u = 2^-24 (float32) or 2^-53
(float64), plus one rounding of the result; so the test does not depend on the order a
kernel sums in, nor on this machine's numpy.  Max pooling and the layout conversions move
values without arithmetic and must be exact.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from tinyfw.backend import ref_layout, ref_nn

UNIT = {np.dtype(np.float32): 2.0 ** -24, np.dtype(np.float64): 2.0 ** -53}


def kernels():
    """tinyfw._C when it holds the layout kernels, else None."""
    try:
        from tinyfw import _C
    except ImportError:
        return None
    return _C if hasattr(_C, "conv2d_nhwc") else None


def _bound(k: int, u: float, absdot):
    g = k * u / (1 - k * u)
    return (g + u) * absdot + np.finfo(np.float64).tiny


def check_conv(K, x, w, stride, padding, dilation, x_layout="nhwc", y_layout="nhwc",
               bias=None, residual=None, relu=False) -> None:
    """conv2d_nhwc of K (packed with K's block) equals ref conv2d within the sum bound.

    With the epilogue (bias: (O,) values; residual: NCHW, passed in y_layout; relu) the
    kernel sums K products and two more terms, so the same bound with K + 2 terms holds
    whatever the order; relu is 1-Lipschitz, so it keeps the bound."""
    o, c, kh, kw = w.shape
    wp = K.conv2d_nhwc_pack(w, int(K.conv2d_nhwc_block(o, w.dtype)))
    res = None if residual is None else \
        (residual if y_layout == "nchw" else ref_layout.nchw_to_nhwc(residual))
    y = K.conv2d_nhwc(x if x_layout == "nchw" else K.nchw_to_nhwc(x), wp, o, stride, padding,
                      dilation, x_layout, y_layout, bias, res, relu)
    if y_layout == "nchw":
        y = ref_layout.nchw_to_nhwc(y)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    exact = ref_nn.conv2d(x64, w64, stride, padding, dilation, 1)
    absdot = ref_nn.conv2d(np.abs(x64), np.abs(w64), stride, padding, dilation, 1)
    terms = c * kh * kw
    if bias is not None:
        b = bias.astype(np.float64).reshape(1, -1, 1, 1)
        exact, absdot, terms = exact + b, absdot + np.abs(b), terms + 1
    if residual is not None:
        r = residual.astype(np.float64)
        exact, absdot, terms = exact + r, absdot + np.abs(r), terms + 1
    assert y.dtype == x.dtype and y.shape == (exact.shape[0],) + exact.shape[2:] + (o,)
    got = ref_layout.nhwc_to_nchw(y)
    if relu:
        assert not np.any(got < 0), "conv2d_nhwc with relu left a negative value"
        exact = np.maximum(exact, 0.0)
    err = np.abs(got.astype(np.float64) - exact)
    lim = _bound(terms, UNIT[x.dtype], absdot)
    assert np.all(err <= lim), f"conv2d_nhwc off by {float((err - lim).max())} over the bound " \
        f"(x {x.shape}, w {w.shape}, stride {stride}, padding {padding}, dilation {dilation}, " \
        f"bias {bias is not None}, residual {residual is not None}, relu {relu})"


def epilogue_case(rng, x, w, stride, padding, dilation, dtype):
    """Random epilogue arguments for a conv case: (bias or None, NCHW residual or None, relu)."""
    o = w.shape[0]
    oh = (x.shape[2] + 2 * padding[0] - dilation[0] * (w.shape[2] - 1) - 1) // stride[0] + 1
    ow = (x.shape[3] + 2 * padding[1] - dilation[1] * (w.shape[3] - 1) - 1) // stride[1] + 1
    bias = rng.standard_normal(o).astype(dtype) if rng.random() < 0.6 else None
    res = rng.standard_normal((x.shape[0], o, oh, ow)).astype(dtype) if rng.random() < 0.6 \
        else None
    return bias, res, bool(rng.random() < 0.6)


def check_pools(K, x, kernel, stride, padding, dilation, ceil_mode, count_include_pad) -> None:
    """NHWC max pooling equals ref's values exactly (NaN where ref has NaN); NHWC average
    pooling within the bound of a sum of kh*kw values and one division."""
    xh = K.nchw_to_nhwc(x)
    got = ref_layout.nhwc_to_nchw(K.max_pool2d_nhwc(xh, kernel, stride, padding, dilation,
                                                    ceil_mode))
    want, _ = ref_nn.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    assert np.array_equal(got, want, equal_nan=True), "max_pool2d_nhwc differs from ref"
    if np.isnan(x).any():
        return
    got = ref_layout.nhwc_to_nchw(K.avg_pool2d_nhwc(xh, kernel, stride, padding, ceil_mode,
                                                    count_include_pad, None))
    x64 = x.astype(np.float64)
    exact = ref_nn.avg_pool2d(x64, kernel, stride, padding, ceil_mode, count_include_pad, None)
    absavg = ref_nn.avg_pool2d(np.abs(x64), kernel, stride, padding, ceil_mode,
                               count_include_pad, None)
    lim = _bound(kernel[0] * kernel[1] + 1, UNIT[x.dtype], absavg)
    assert np.all(np.abs(got - exact) <= lim), "avg_pool2d_nhwc outside the sum bound"


def check_conversions(K, x) -> None:
    """Both conversions are exact transposes and inverse to each other."""
    h = K.nchw_to_nhwc(x)
    assert np.array_equal(h, x.transpose(0, 2, 3, 1), equal_nan=True) and h.flags.c_contiguous
    assert np.array_equal(K.nhwc_to_nchw(h), x, equal_nan=True)


def conv_case(rng, dtype=np.float32):
    """A random conv geometry that fits: odd channel counts, strides, padding, dilation."""
    while True:
        n, c, o = int(rng.integers(1, 4)), int(rng.choice([1, 3, 8, 17, 33])), \
            int(rng.choice([1, 5, 16, 31, 48, 64, 70]))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 20))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if h + 2 * p[0] >= d[0] * (kh - 1) + 1 and w + 2 * p[1] >= d[1] * (kw - 1) + 1:
            x = rng.standard_normal((n, c, h, w)).astype(dtype)
            wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
            return x, wt, s, p, d


def pool_case(rng, dtype=np.float32):
    """A random pooling window that fits (padding at most half the kernel), NaNs sometimes."""
    while True:
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        h, w = int(rng.integers(k[0], 10)), int(rng.integers(k[1], 10))
        x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.choice([1, 5, 16, 19])), h, w))
        if rng.random() < 0.2:
            x[rng.random(x.shape) < 0.1] = np.nan
        return x.astype(dtype), k, s, p, bool(rng.integers(0, 2)), bool(rng.integers(0, 2))


def check_epilogue_bits(K, x, w, stride, padding, dilation, x_layout, y_layout, bias, residual,
                        relu) -> None:
    """conv2d_nhwc with the epilogue gives the bits of the same kernel without it followed
    by the graph's ops: (y + bias) + residual, then relu's rule (negatives to +0, NaN
    kept); numpy's float adds round correctly, as the kernel's do.  NaNs in x make some
    sums NaN, which relu must keep."""
    o = w.shape[0]
    wp = K.conv2d_nhwc_pack(w, int(K.conv2d_nhwc_block(o, w.dtype)))
    xin = x if x_layout == "nchw" else K.nchw_to_nhwc(x)
    res = None if residual is None else \
        (residual if y_layout == "nchw" else ref_layout.nchw_to_nhwc(residual))
    plain = K.conv2d_nhwc(xin, wp, o, stride, padding, dilation, x_layout, y_layout)
    got = K.conv2d_nhwc(xin, wp, o, stride, padding, dilation, x_layout, y_layout, bias, res, relu)
    want = plain.copy()
    if bias is not None:
        want += bias.reshape((1, -1, 1, 1) if y_layout == "nchw" else (1, 1, 1, -1))
    if res is not None:
        want += res
    if relu:
        want[want < 0] = 0
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and \
        np.array_equal(got[~nan].view(np.uint8), want[~nan].view(np.uint8)), \
        f"conv2d_nhwc's epilogue differs from the unfused ops ({x_layout} -> {y_layout}, O {o}, " \
        f"bias {bias is not None}, residual {residual is not None}, relu {relu})"


def battery(K, seed: int = 0, cases: int = 40) -> int:
    """`cases` random conv, pool and conversion checks in float32 and float64."""
    rng = np.random.default_rng(seed)
    for i in range(cases):
        dt = np.float64 if i % 4 == 3 else np.float32
        case = conv_case(rng, dt)
        bias, res, relu = epilogue_case(rng, *case, dt) if i % 3 else (None, None, False)
        layouts = dict(x_layout=("nhwc", "nchw")[i % 2], y_layout=("nhwc", "nchw")[i // 2 % 2])
        check_conv(K, *case, **layouts, bias=bias, residual=res, relu=relu)
        if bias is not None or res is not None or relu:
            xn = case[0].copy()
            xn[rng.random(xn.shape) < 0.02] = np.nan
            check_epilogue_bits(K, xn, *case[1:], **layouts, bias=bias, residual=res, relu=relu)
        x, k, s, p, ceil, cip = pool_case(rng, dt)
        check_pools(K, x, k, s, p, (1, 1), ceil, cip)
        check_conversions(K, x)
    return cases


if __name__ == "__main__":
    K = kernels()
    if K is None:
        sys.exit("tinyfw._C with the layout kernels is not built")
    n = battery(K, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(json.dumps({"isa": K.isa(), "cases": n, "block64": int(K.conv2d_nhwc_block(64, np.float32))}))
