"""Conformance of the device backends: every primitive of ``ref`` on the check and meta
devices.

- ``check`` runs ref's own kernels behind arrays that are not numpy arrays, so its results
  must equal ref's bit for bit; this proves its wrapping (arguments, tuples, in-place
  primitives, None) on every primitive.
- ``meta`` computes only shapes and dtypes; they must equal ref's for the same inputs.

`CASES` maps each primitive to an input generator ``gen(draw, rng) -> (args, kwargs)`` of
host arrays and attributes; `test_every_primitive_has_a_case` fails when a primitive is
added to ref without one (and so without a meta rule being checked).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyfw.backend import CONTRACT, check, meta, primitives, ref

import index_cases
import linalg_device_cases

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]
ALL = FLOATS + [np.dtype(t) for t in (np.int8, np.int32, np.int64, np.bool_)]
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
nonempty = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def _arr(rng, shape, dtype=np.float32, kind="normal") -> np.ndarray:
    return np.asarray(_values(rng, shape, np.dtype(dtype), kind))


def _values(rng, shape, dtype, kind):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        lo = 0 if kind == "pos" else -5
        return rng.integers(lo, 6, shape).astype(dtype)
    v = rng.uniform(0.1, 3.0, shape) if kind == "pos" else rng.standard_normal(shape)
    return v.astype(dtype)


def _float(draw):
    return draw(st.sampled_from(FLOATS))


def unary(kind="normal", floats=True, dtypes=ALL, **attrs):
    def gen(draw, rng):
        dt = _float(draw) if floats else draw(st.sampled_from(dtypes))
        return (_arr(rng, draw(shapes), dt, kind),), dict(attrs)
    return gen


def binary(floats=False):
    def gen(draw, rng):
        dt = _float(draw) if floats else draw(st.sampled_from(ALL[:7]))
        s = draw(shapes)
        b = s[draw(st.integers(0, len(s))):]
        b = tuple(1 if draw(st.booleans()) else n for n in b)
        return (_arr(rng, s, dt, "pos"), _arr(rng, b, dt, "pos")), {}
    return gen


def reduce(floats=False, one_dim=False):
    def gen(draw, rng):
        s = draw(nonempty)
        dt = _float(draw) if floats else draw(st.sampled_from(ALL))
        x = _arr(rng, s, dt)
        keep = draw(st.booleans())
        if one_dim:
            return (x, draw(st.integers(0, len(s) - 1)), keep), {}
        dims = tuple(sorted(set(draw(st.lists(st.integers(0, len(s) - 1), min_size=1, max_size=len(s))))))
        return (x, dims, keep), {}
    return gen


def matmul(draw, rng):
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(0, 4)), draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (3, 1)]))
    bb = batch[draw(st.integers(0, len(batch))):]
    dt = _float(draw)
    return (_arr(rng, batch + (m, k), dt), _arr(rng, bb + (k, n), dt)), {}


def nchw(draw, rng, dt=np.float32):
    return _arr(rng, (2, 3, draw(st.integers(4, 7)), draw(st.integers(4, 7))), dt)


def conv(draw, rng):
    x = nchw(draw, rng)
    w = _arr(rng, (4, 3, 3, 3))
    return (x, w, (1, 2), (1, 0), (1, 1), 1), {}


def conv_bi(draw, rng):
    (x, w, st_, pad, dil, g), _ = conv(draw, rng)
    y = ref.conv2d(x, w, st_, pad, dil, g)
    return (_arr(rng, y.shape), w, x.shape, st_, pad, dil, g), {}


def conv_bw(draw, rng):
    (x, w, st_, pad, dil, g), _ = conv(draw, rng)
    y = ref.conv2d(x, w, st_, pad, dil, g)
    return (_arr(rng, y.shape), x, w.shape, st_, pad, dil, g), {}


def maxpool(draw, rng):
    return (nchw(draw, rng), (2, 2), (2, 2), (1, 0), (1, 1), draw(st.booleans())), {}


def maxpool_bw(draw, rng):
    (x, *rest), _ = maxpool(draw, rng)
    y, idx = ref.max_pool2d(x, *rest)
    return (_arr(rng, y.shape), idx, x.shape), {}


def avgpool(draw, rng):
    return (nchw(draw, rng), (3, 2), (2, 1), (1, 1), draw(st.booleans()), draw(st.booleans()),
            None), {}


def avgpool_bw(draw, rng):
    (x, *rest), _ = avgpool(draw, rng)
    y = ref.avg_pool2d(x, *rest)
    return (_arr(rng, y.shape), x.shape, *rest), {}


def rows(draw, rng, dt=None):
    return _arr(rng, (draw(st.integers(1, 5)), draw(st.integers(1, 6))), dt or _float(draw))


def dim_rows(draw, rng):
    x = rows(draw, rng)
    return (x, draw(st.integers(0, 1))), {}


def softmax_bw(fn):
    def gen(draw, rng):
        (x, dim), _ = dim_rows(draw, rng)
        return (fn(x, dim), _arr(rng, x.shape, x.dtype), dim), {}
    return gen


def layer_norm(draw, rng):
    x = rows(draw, rng)
    w = _arr(rng, x.shape[1:], x.dtype) if draw(st.booleans()) else None
    b = _arr(rng, x.shape[1:], x.dtype) if w is not None else None
    return (x, w, b, 1e-5), {}


def layer_norm_bw(draw, rng):
    (x, w, b, eps), _ = layer_norm(draw, rng)
    _, mean, rstd = ref.layer_norm(x, w, b, eps)
    return (_arr(rng, x.shape, x.dtype), x, w, mean, rstd), {}


def rms_norm(draw, rng):
    x = rows(draw, rng)
    w = _arr(rng, x.shape[1:], x.dtype) if draw(st.booleans()) else None
    return (x, w, 1e-5), {}


def rms_norm_bw(draw, rng):
    (x, w, eps), _ = rms_norm(draw, rng)
    return (_arr(rng, x.shape, x.dtype), x, w, ref.rms_norm(x, w, eps)[1]), {}


def batch_norm(draw, rng):
    dt = _float(draw)
    x = _arr(rng, (3, 2, draw(st.integers(1, 4))), dt)
    w = _arr(rng, (2,), dt) if draw(st.booleans()) else None
    return (x, w, _arr(rng, (2,), dt) if w is not None else None, 1e-5), {}


def batch_norm_bw(draw, rng):
    (x, w, b, eps), _ = batch_norm(draw, rng)
    _, mean, invstd = ref.batch_norm_forward(x, w, b, eps)
    return (_arr(rng, x.shape, x.dtype), x, w, mean, invstd), {}


def ce(draw, rng):
    x = rows(draw, rng)
    t = rng.integers(0, x.shape[1], x.shape[0]).astype(np.int64)
    w = _arr(rng, (x.shape[1],), x.dtype, "pos") if draw(st.booleans()) else None
    return (x, t, w, -100, draw(st.sampled_from([0.0, 0.1]))), {}


def ce_bw(draw, rng):
    (x, t, w, ii, ls), _ = ce(draw, rng)
    _, lse = ref.cross_entropy_forward(x, t, w, ii, ls)
    return (x, t, w, ii, ls, lse, _arr(rng, x.shape[:1], x.dtype)), {}


def index_case(gen):

    def g(draw, rng):
        mk = lambda shape_or_arr, dt, kind, layout: (  # noqa: E731
            shape_or_arr if dt is None else _arr(rng, shape_or_arr, dt))
        return tuple(gen(draw, mk)), {}
    return g


def cat(draw, rng):
    s = draw(nonempty)
    d = draw(st.integers(0, len(s) - 1))
    dt = draw(st.sampled_from(ALL))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        t = list(s)
        t[d] = draw(st.integers(0, 3))
        parts.append(_arr(rng, tuple(t), dt))
    return (parts, d), {}


def pad(draw, rng):
    s = draw(shapes)
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in s)
    return (_arr(rng, s), pads, 0.5), {}


def tile(draw, rng):
    s = draw(shapes)
    return (_arr(rng, s), tuple(draw(st.lists(st.integers(0, 3), max_size=3)))), {}


def flip(draw, rng):
    s = draw(nonempty)
    return (_arr(rng, s), tuple(range(draw(st.integers(0, len(s)))))), {}


def tri(draw, rng):
    return (_arr(rng, (3,) + draw(nonempty)), draw(st.integers(-2, 2))), {}


def sort(draw, rng):
    s = draw(nonempty)
    return (_arr(rng, s, draw(st.sampled_from(ALL[:7]))), draw(st.integers(0, len(s) - 1)),
            draw(st.booleans())), {}


def cast(draw, rng):
    return (_arr(rng, draw(shapes), draw(st.sampled_from(ALL))), draw(st.sampled_from(ALL))), {}


def where(draw, rng):
    s = draw(shapes)
    dt = draw(st.sampled_from(ALL))
    return (_arr(rng, s, np.bool_), _arr(rng, s, dt), _arr(rng, s[1:], dt)), {}


def masked_fill(draw, rng):
    s = draw(shapes)
    return (_arr(rng, s), _arr(rng, s, np.bool_), 2.5), {}


def clamp(draw, rng):
    return (_arr(rng, draw(shapes)), -0.5, draw(st.sampled_from([None, 0.5]))), {}


def copy_(draw, rng):
    s = draw(shapes)
    return (_arr(rng, s, draw(st.sampled_from(ALL))), _arr(rng, s[1:])), {}


def fill_(draw, rng):
    return (_arr(rng, draw(shapes)), 1.5), {}


def dropout(draw, rng):
    return (_arr(rng, draw(shapes)), 0.3, draw(st.integers(0, 100))), {}


def _opt_tensors(draw, rng, n):
    s = draw(nonempty)
    return [_arr(rng, s) for _ in range(n)]


def sgd(draw, rng):
    p, g, m = _opt_tensors(draw, rng, 3)
    return (p, g, m, 0.1, 0.9, 0.0, 0.01, draw(st.booleans()), False, draw(st.booleans())), {}


def adam(draw, rng):
    p, g, m, v, vmax = _opt_tensors(draw, rng, 5)
    v, vmax = np.abs(v), np.abs(vmax)
    return (p, g, m, v, vmax, 3, 1e-3, 0.9, 0.999, 1e-8, 0.01, draw(st.booleans()), False,
            draw(st.booleans())), {}


def sdpa(draw, rng):
    dt = _float(draw)
    b, h, L, S, e, ev = (draw(st.integers(0 if i == 3 else 1, 3)) for i in range(6))
    q, k, v = (_arr(rng, s, dt) for s in ((b, h, L, e), (b, h, S, e), (b, h, S, ev)))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    mask = None
    if kind == "bool":
        mask = np.broadcast_to(rng.random((L, S)) < 0.7, (b, h, L, S))
    elif kind == "float":
        mask = _arr(rng, (b, 1, L, S), dt)
        mask = np.broadcast_to(mask, (b, h, L, S))
    return (q, k, v, mask, 0.5, kind == "causal"), {}


def sdpa_bw(draw, rng):
    (q, k, v, mask, scale, causal), _ = sdpa(draw, rng)
    out, lse = ref.sdpa_forward(q, k, v, mask, scale, causal)
    return (_arr(rng, out.shape, q.dtype), q, k, v, out, lse, mask, scale, causal), {}


def rmsprop(draw, rng):
    p, g, sq, ga, mb = _opt_tensors(draw, rng, 5)
    return (p, g, np.abs(sq), ga, mb, 0.01, 0.99, 1e-8, 0.0, 0.9, draw(st.booleans()), False), {}


def adagrad(draw, rng):
    p, g, s = _opt_tensors(draw, rng, 3)
    return (p, g, np.abs(s), 2, 0.01, 0.0, 0.0, 1e-10, False), {}


_UNARY_FLOAT = ["exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos",
                "tanh", "sigmoid", "silu", "erf", "erfc", "relu", "ceil", "floor", "round"]
CASES = {n: unary("pos" if n in ("log", "sqrt", "rsqrt") else "normal") for n in _UNARY_FLOAT}
CASES.update({
    "neg": unary(floats=False, dtypes=ALL[:7]), "abs": unary(floats=False),
    "sign": unary(floats=False, dtypes=ALL[:7]),
    "logical_not": unary(floats=False), "isnan": unary(), "isinf": unary(),
    "contiguous": unary(floats=False), "gelu": unary(approximate="tanh"),
    "leaky_relu": unary(negative_slope=0.1), "softplus": unary(beta=1.0, threshold=20.0),
    "clamp": clamp, "cumsum": lambda d, r: ((_arr(r, (3, 4), d(st.sampled_from(ALL))), 1), {}),
    "cumprod": lambda d, r: ((_arr(r, (3, 4), d(st.sampled_from(ALL))), 1), {}),
    "cummax": lambda d, r: ((_arr(r, (3, 4), d(st.sampled_from(ALL))), 0), {}),
    "cummin": lambda d, r: ((_arr(r, (3, 4), d(st.sampled_from(ALL))), 1), {}),
    "logcumsumexp": lambda d, r: ((_arr(r, (3, 4), d(st.sampled_from(FLOATS))), 1), {}),
    "cast": cast, "where": where, "masked_fill": masked_fill, "copy_": copy_, "fill_": fill_,
    "matmul": matmul, "cat": cat, "pad": pad, "tile": tile, "flip": flip, "triu": tri,
    "tril": tri, "sort": sort, "dropout": dropout,
    "sum": reduce(), "prod": reduce(), "amax": reduce(), "amin": reduce(), "any": reduce(),
    "all": reduce(), "argmax": reduce(one_dim=True), "argmin": reduce(one_dim=True),
    "conv2d": conv, "conv2d_backward_input": conv_bi, "conv2d_backward_weight": conv_bw,
    "max_pool2d": maxpool, "max_pool2d_backward": maxpool_bw, "avg_pool2d": avgpool,
    "avg_pool2d_backward": avgpool_bw, "softmax": dim_rows, "log_softmax": dim_rows,
    "softmax_backward": softmax_bw(ref.softmax), "log_softmax_backward": softmax_bw(ref.log_softmax),
    "layer_norm": layer_norm, "layer_norm_backward": layer_norm_bw,
    "rms_norm": rms_norm, "rms_norm_backward": rms_norm_bw,
    "batch_norm_forward": batch_norm, "batch_norm_backward": batch_norm_bw,
    "cross_entropy_forward": ce, "cross_entropy_backward": ce_bw,
    "sdpa_forward": sdpa, "sdpa_backward": sdpa_bw,
    "sgd_step": sgd, "adam_step": adam, "rmsprop_step": rmsprop, "adagrad_step": adagrad,
    "gather": index_case(index_cases.gather_args),
    "scatter": index_case(index_cases.scatter_assign_args),
    "scatter_add": index_case(index_cases.scatter_args),
    "index": index_case(index_cases.index_args), "index_put": index_case(index_cases.index_put_args),
    "index_put_": index_case(index_cases.index_put_args),
})


def _scatter_reduce(draw, rng):  # issue 16: scatter_add's inputs plus a reduction
    args, kw = index_case(index_cases.scatter_args)(draw, rng)
    return args + (draw(st.sampled_from(["sum", "prod", "mean", "amax", "amin"])),
                   draw(st.booleans())), kw


def _index_reduce(draw, rng):  # x, dim, a 1-d index, src of x's shape with len(index) at dim
    xs = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    dim = draw(st.integers(0, len(xs) - 1))
    k = draw(st.integers(0, 5))
    dt = draw(st.sampled_from(ALL))
    index = rng.integers(-xs[dim], xs[dim], k).astype(np.int64)
    src = _arr(rng, xs[:dim] + (k,) + xs[dim + 1:], dt)
    return (_arr(rng, xs, dt), dim, index, src,
            draw(st.sampled_from(["sum", "prod", "mean", "amax", "amin"])), draw(st.booleans())), {}


CASES["scatter_reduce"] = _scatter_reduce
CASES["index_reduce"] = _index_reduce


# -- int8 quantization primitives (values: tests/test_quant_ref.py) ---------------------------
def _codes(rng, shape, dtype=np.uint8):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _qconv(draw, rng):
    x, w = _codes(rng, (2, 4, draw(st.integers(3, 6)), 5)), _codes(rng, (6, 2, 3, 3), np.int8)
    out_scale = draw(st.sampled_from([None, 0.05]))
    return (x, 0.02, 128, w, rng.uniform(0.01, 0.1, 6).astype(np.float32),
            _arr(rng, (6,)), (1, 2), (1, 0), (1, 1), 2, out_scale, 3, draw(st.booleans())), {}


CASES.update({
    "quantize_per_tensor": lambda d, r: ((_arr(r, d(nonempty)), 0.1, 3,
                                          d(st.sampled_from(["uint8", "int8"]))), {}),
    "quantize_per_channel": lambda d, r: ((_arr(r, (3, 4)), np.float32([0.1, 0.2, 0.3]),
                                           np.int32([0, 1, -2]), 0, "int8"), {}),
    "dequantize_per_tensor": lambda d, r: ((_codes(r, d(nonempty)), 0.1, 7), {}),
    "dequantize_per_channel": lambda d, r: ((_codes(r, (3, 4), np.int8),
                                             np.float32([0.1, 0.2, 0.3, 0.4]),
                                             np.int32([0, 1, -2, 3]), 1), {}),
    "fake_quantize": lambda d, r: ((_arr(r, (3, 4)), np.float32([0.05]), np.int32([1]),
                                    None, 0, 255), {}),
    "qlinear": lambda d, r: ((_codes(r, (3, 5)), 0.02, 100, _codes(r, (4, 5), np.int8),
                              r.uniform(0.01, 0.1, 4).astype(np.float32), _arr(r, (4,)),
                              d(st.sampled_from([None, 0.07])), 5, d(st.booleans())), {}),
    "qconv2d": _qconv,
    "qadd": lambda d, r: ((_codes(r, (2, 3)), 0.1, 120, _codes(r, (2, 3)), 0.2, 130, 0.25, 128,
                           d(st.booleans())), {}),
    "qmax_pool2d": lambda d, r: ((_codes(r, (2, 3, 5, 6)), (2, 2), (2, 2), (1, 0), (1, 1),
                                  d(st.booleans())), {}),
    "qavg_pool2d": lambda d, r: ((_codes(r, (2, 3, 5, 6)), 128, (3, 3), (2, 2), (1, 1),
                                  d(st.booleans()), d(st.booleans())), {}),
})


CASES.update(linalg_device_cases.CASES)  # factorizations and solvers (ref_linalg.py)
def conv3d(draw, rng):
    # groups 2, a stride, padding and dilation in different dims
    x = _arr(rng, (2, 4) + tuple(draw(st.integers(3, 5)) for _ in range(3)), _float(draw))
    w = _arr(rng, (4, 2, 2, 3, 2), x.dtype)
    return (x, w, (1, 2, 1), (1, 0, 1), (1, 1, 2), 2), {}


def conv3d_bi(draw, rng):
    (x, w, *opts), _ = conv3d(draw, rng)
    y = ref.conv3d(x, w, *opts)
    return (_arr(rng, y.shape, x.dtype), w, x.shape, *opts), {}


def conv3d_bw(draw, rng):
    (x, w, *opts), _ = conv3d(draw, rng)
    y = ref.conv3d(x, w, *opts)
    return (_arr(rng, y.shape, x.dtype), x, w.shape, *opts), {}


CASES.update({"conv3d": conv3d, "conv3d_backward_input": conv3d_bi,
              "conv3d_backward_weight": conv3d_bw})
def gelu_add_norm(draw, rng):
    m, n = draw(st.integers(0, 4)), draw(st.integers(1, 5))
    h, x = _arr(rng, (m, n)), _arr(rng, (m, n))
    b, w, beta = (_arr(rng, (n,)) if draw(st.booleans()) else None for _ in range(3))
    return (h, b, x, w, beta, 1e-5, draw(st.sampled_from(["none", "tanh"]))), {}


def gelu_add_norm_bw(draw, rng):
    (h, b, x, w, beta, eps, approximate), _ = gelu_add_norm(draw, rng)
    _, r, mean, rstd = ref.gelu_add_layer_norm(h, b, x, w, beta, eps, approximate)
    return (_arr(rng, h.shape), r, w, mean, rstd, h, b, approximate), {}


CASES.update({"gelu_add_layer_norm": gelu_add_norm, "gelu_add_layer_norm_backward": gelu_add_norm_bw})


# -- interpolate's separable resampling (issue 16; values: tests/test_conformance_resample.py)
def _resample(draw, rng):
    b, n_in, inner, n_out, taps = (draw(st.integers(1, 4)) for _ in range(5))
    x = _arr(rng, (b, n_in, inner), _float(draw))
    wdt = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
    return (x, rng.integers(-1, n_in, (n_out, taps)), _arr(rng, (n_out, taps), wdt)), {}


def _resample_bw(draw, rng):
    (x, index, weight), _ = _resample(draw, rng)
    return (_arr(rng, (x.shape[0], index.shape[0], x.shape[2]), x.dtype), index, weight,
            x.shape[1]), {}


CASES.update({"resample_axis": _resample, "resample_axis_backward": _resample_bw})

# issue 16: integer primitives (ref_intops.py)
INTS = [np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64)]


def int_binary(draw, rng):
    dt = draw(st.sampled_from(INTS))
    s = draw(shapes)
    b = tuple(1 if draw(st.booleans()) else n for n in s[draw(st.integers(0, len(s))):])
    return (_arr(rng, s, dt, "pos"), _arr(rng, b, dt, "pos")), {}


def _counted(draw, rng):
    x = _arr(rng, (draw(st.integers(0, 9)),), draw(st.sampled_from([np.float32, np.float64])))
    return x


def _bincount(draw, rng):
    n = draw(st.integers(0, 8))
    wdt = draw(st.sampled_from([None, np.float32, np.float64, np.int32]))
    return (rng.integers(0, 5, n), None if wdt is None else _arr(rng, (n,), wdt), 6), {}


CASES.update({n: int_binary for n in ("bitwise_and", "bitwise_or", "bitwise_xor", "gcd", "lcm",
                                      "bitwise_left_shift", "bitwise_right_shift")})
CASES.update({
    "bitwise_not": unary(floats=False, dtypes=INTS + [np.dtype(np.bool_)]),
    "hash_tensor": reduce(),
    "bincount": _bincount,
    "histc": lambda d, r: ((_counted(d, r), d(st.integers(1, 5)), -1.0, 1.5), {}),
    "histogram": lambda d, r: ((_counted(d, r), np.float32([-1.0, -0.2, 0.0, 1.5]), None,
                                d(st.booleans())), {}),
})


for _n in ("add", "sub", "mul", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
           "logical_and", "logical_or", "logical_xor"):
    CASES[_n] = binary()
for _n in ("div", "atan2", "floor_divide", "remainder", "tanh_backward", "sigmoid_backward",
           "silu_backward", "gelu_backward"):
    CASES[_n] = binary(floats=True)

# issue 16, elementwise math
CASES.update(__import__("elementwise_math_cases").device_cases())

def test_every_primitive_has_a_case():
    missing = sorted(set(primitives(ref)) - set(CASES))
    assert not missing, f"primitives without a device conformance case: {missing}"


def test_both_backends_define_every_primitive_and_the_contract():
    for mod in (check, meta):
        missing = [n for n in list(primitives(ref)) + list(CONTRACT) if not hasattr(mod, n)]
        assert not missing, f"{mod.__name__} lacks {missing}"


def _to(backend, x):
    if isinstance(x, np.ndarray):
        return backend.from_host(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(backend, v) for v in x)
    return x


def _flat(x) -> list:
    return [v for item in x for v in _flat(item)] if isinstance(x, tuple) else [x]


def _run(name, data, seed):
    rng = np.random.default_rng(seed)
    args, kwargs = CASES[name](data.draw, rng)
    with np.errstate(all="ignore"):
        expected_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        expected = getattr(ref, name)(*expected_args, **kwargs)
    return args, kwargs, expected, expected_args


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_check_equals_ref(name, data, seed):
    args, kwargs, expected, expected_args = _run(name, data, seed)
    dev_args = _to(check, args)
    with np.errstate(all="ignore"):
        got = getattr(check, name)(*dev_args, **kwargs)
    if expected is None:  # an in-place primitive: compare what it wrote into its arguments
        assert got is None
        got = tuple(a for a in dev_args if isinstance(a, check.CheckArray))
        expected = tuple(a for a in expected_args if isinstance(a, np.ndarray))
    for g, e in zip(_flat(got), _flat(expected)):
        if e is None:
            assert g is None
            continue
        h = check.to_host(g)
        assert h.dtype == e.dtype and h.shape == e.shape
        np.testing.assert_array_equal(h, e, err_msg=f"{name} on {args!r} {kwargs!r}")


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_meta_shapes_and_dtypes_equal_ref(name, data, seed):
    args, kwargs, expected, _ = _run(name, data, seed)
    got = getattr(meta, name)(*_to(meta, args), **kwargs)
    if expected is None:
        assert got is None
        return
    for g, e in zip(_flat(got), _flat(expected)):
        if e is None:
            assert g is None
            continue
        e = np.asarray(e)
        assert (g.shape, g.dtype) == (e.shape, e.dtype), f"{name}: meta {g.shape} {g.dtype}, ref {e.shape} {e.dtype}"


def test_check_arrays_refuse_numpy():
    a = check.from_host(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="reached numpy"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.add(a, 1)
    with pytest.raises(RuntimeError, match="numpy \\(CPU\\) array"):
        check.add(a, np.ones(3, np.float32))


def test_meta_has_no_values():
    a = meta.from_host(np.ones((2, 3)))
    assert (a.shape, a.dtype) == ((2, 3), np.float64)
    with pytest.raises(RuntimeError, match="meta.*no data"):
        meta.to_host(a)
