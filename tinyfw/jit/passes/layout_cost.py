"""The layout pass's measured costs: kernel times of the NCHW and NHWC variants of a
chain's conv/pool nodes and of the layout conversions, each timed once per shape, dtype
and thread count on random data (best of two calls after a warm-up) and cached for the
process; tests replace `timed` to fix the outcome."""
from __future__ import annotations

import time

import numpy as np

from ...ops.nn_conv import Conv2d, MaxPool2d
from ..ir import Node, Value

_TIMINGS: dict = {}  # measured kernel times (s) by (what, shapes, attrs, threads)


def nhwc_shape(shape: tuple) -> tuple:
    n, c, h, w = shape
    return (n, h, w, c)


def _threads() -> int:
    from ...threads import get_num_threads

    return get_num_threads()


def timed(key: tuple, fn) -> float:
    """The best of two timed calls of fn (after one warm-up), cached per process."""
    key = key + (_threads(),)
    t = _TIMINGS.get(key)
    if t is None:
        fn()
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        t = _TIMINGS[key] = best
    return t


def rand(shape: tuple, dtype) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def cost(n: Node, B, K, x_nchw: bool) -> tuple:
    """(NCHW seconds, NHWC seconds) of anchor node n's kernel; `x_nchw`: a conv that reads
    its NCHW input in place."""
    x = n.inputs[0]
    dt = np.dtype(x.dtype)
    xs, xh = tuple(x.shape), nhwc_shape(tuple(x.shape))
    a = n.attrs
    if n.fn is Conv2d:
        w = n.inputs[1]
        o = w.shape[0]
        key = (tuple(w.shape), a["stride"], a["padding"], a["dilation"], dt.str)
        X, Wt = rand(xs, dt), rand(tuple(w.shape), dt)
        Xh = K.nchw_to_nhwc(X)
        wp = K.conv2d_nhwc_pack(Wt, K.conv2d_nhwc_block(o, dt))
        t0 = timed(("conv", xs) + key,
                    lambda: B.conv2d(X, Wt, a["stride"], a["padding"], a["dilation"], 1))
        lay = "nchw" if x_nchw else "nhwc"
        t1 = timed(("conv_nhwc", xs, lay) + key,
                    lambda: K.conv2d_nhwc(X if x_nchw else Xh, wp, o, a["stride"], a["padding"],
                                          a["dilation"], lay))
        if w.kind != "const":  # packed on every call
            t1 += timed(("pack", tuple(w.shape), dt.str),
                         lambda: K.conv2d_nhwc_pack(Wt, K.conv2d_nhwc_block(o, dt)))
        return t0, t1
    X = rand(xs, dt)
    Xh = K.nchw_to_nhwc(X)
    key = (xs, tuple(sorted(a.items())), dt.str)
    if n.fn is MaxPool2d:
        args = (a["kernel"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"])
        return (timed(("maxpool",) + key, lambda: B.max_pool2d(X, *args)),
                timed(("maxpool_nhwc",) + key, lambda: K.max_pool2d_nhwc(Xh, *args)))
    args = (a["kernel"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"],
            a["divisor_override"])
    return (timed(("avgpool",) + key, lambda: B.avg_pool2d(X, *args)),
            timed(("avgpool_nhwc",) + key, lambda: K.avg_pool2d_nhwc(Xh, *args)))


def conversion_cost(v: Value, K, to_nhwc: bool) -> float:
    dt = np.dtype(v.dtype)
    if to_nhwc:
        X = rand(tuple(v.shape), dt)
        return timed(("to_nhwc", tuple(v.shape), dt.str), lambda: K.nchw_to_nhwc(X))
    X = rand(nhwc_shape(tuple(v.shape)), dt)
    return timed(("to_nchw", tuple(v.shape), dt.str), lambda: K.nhwc_to_nchw(X))


def fmt_ms(t: float) -> str:
    return f"{t * 1e3:.2f} ms"


def nchw_store_cheaper(n: Node, K) -> bool:
    """Whether conv node n writing NCHW itself measures cheaper than its NHWC store plus
    the exit conversion."""
    x, wp = n.inputs[0], n.inputs[1]
    a = n.attrs
    dt = np.dtype(x.dtype)
    X, WP = rand(tuple(x.shape), dt), rand(tuple(wp.shape), dt)
    args = (a["out_channels"], a["stride"], a["padding"], a["dilation"], a.get("x_layout", "nhwc"))
    key = (tuple(x.shape), tuple(wp.shape)) + args + (dt.str,)
    t_nhwc = timed(("conv_store", "nhwc") + key,
                    lambda: K.nhwc_to_nchw(K.conv2d_nhwc(X, WP, *args, "nhwc")))
    t_nchw = timed(("conv_store", "nchw") + key, lambda: K.conv2d_nhwc(X, WP, *args, "nchw"))
    return t_nchw < t_nhwc


def nchw_read_cheaper(t: Node, convs: list, K) -> bool:
    """Whether conv nodes `convs` reading ToNHWC node t's NCHW input in place measure
    cheaper than the conversion and their NHWC reads (the timings `cost` takes, under the
    same keys: the answer agrees with layout._check_direct's for the same convs)."""
    v = t.inputs[0]
    dt = np.dtype(v.dtype)
    xs = tuple(v.shape)
    X = rand(xs, dt)
    Xh = K.nchw_to_nhwc(X)
    t_in, t_cv = 0.0, conversion_cost(v, K, True)
    for n in convs:
        a = n.attrs
        WP = rand(tuple(n.inputs[1].shape), dt)
        w_shape = (a["out_channels"], xs[1]) + tuple(WP.shape[1:3])
        key = (w_shape, a["stride"], a["padding"], a["dilation"], dt.str)
        args = (a["out_channels"], a["stride"], a["padding"], a["dilation"])
        t_in += timed(("conv_nhwc", xs, "nchw") + key,
                       lambda: K.conv2d_nhwc(X, WP, *args, "nchw"))
        t_cv += timed(("conv_nhwc", xs, "nhwc") + key,
                       lambda: K.conv2d_nhwc(Xh, WP, *args, "nhwc"))
    return t_in < t_cv
