"""A representative set of kernels for test_isa_levels.py: each ISA level runs them in its
own process (``python isa_cases.py OUT.npz`` with TINYFW_ISA set) and the test compares
the results with the reference backend, or with float64 for the vectorised math.

Each case: name -> (function of a backend module and the inputs, comparison), where the
comparison is ``("exact",)`` (ref's bits), ``("close", terms)`` (ref within float32
rounding of a sum of `terms` products) or ``("ulp", bound, f64)`` (within `bound` float32
ulps of the float64 function `f64`).
"""
from __future__ import annotations

import sys

import ml_dtypes
import numpy as np

F32, BF16 = np.float32, ml_dtypes.bfloat16


def inputs() -> dict:
    rng = np.random.default_rng(2024)
    x = {
        "a": rng.standard_normal((64, 96)).astype(F32),
        "b": rng.standard_normal(96).astype(F32),
        "t": rng.standard_normal((96, 64)).astype(F32).T,  # a transposed operand
        "wide": np.concatenate([rng.uniform(-90, 90, 4000), rng.standard_normal(4000) * 3,
                                [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, 88.7, -103.9]]).astype(F32),
        "cast64": np.concatenate([rng.standard_normal(3000) * 1e3, [np.nan, np.inf, -np.inf, 1e10, 3e9,
                                                                   -2.0 ** 31 - 1, 690.0000188, 300.5]]),
        "big": (rng.integers(-2 ** 62, 2 ** 62, 2000) >> rng.integers(0, 62, 2000)).astype(np.int64),
        "m1": rng.standard_normal((130, 70)).astype(F32),
        "m2": rng.standard_normal((70, 90)).astype(F32),
        "img": rng.standard_normal((2, 3, 11, 11)).astype(F32),
        "w": rng.standard_normal((4, 3, 3, 3)).astype(F32),
        "gy": rng.standard_normal((2, 4, 6, 6)).astype(F32),
        "logits": (rng.standard_normal((33, 17)) * 4).astype(F32),
        "target": rng.integers(0, 17, 33).astype(np.int64),
        "lnw": rng.standard_normal(96).astype(F32),
        "grads": rng.standard_normal((3, 1000)).astype(F32),
        "param": rng.standard_normal(1000).astype(F32),
        # attention (B, H, L, E): 37 queries over 300 keys (two key blocks, panel tails)
        "aq": (0.5 * rng.standard_normal((2, 2, 37, 24))).astype(F32),
        "ak": (0.5 * rng.standard_normal((2, 2, 300, 24))).astype(F32),
        "av": rng.standard_normal((2, 2, 300, 20)).astype(F32),
        "ag": rng.standard_normal((2, 2, 37, 20)).astype(F32),
    }
    x["wide"][:16] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, 88.7, -103.9, 20, -20, 1e-8, -1e-8, 5, -5, 0.5, -0.5]
    return x


def _adam(B, X):
    p, m, v = X["param"].copy(), np.zeros(1000, F32), np.zeros(1000, F32)
    for step, g in enumerate(X["grads"], 1):
        B.adam_step(p, g, m, v, None, step, 1e-2, 0.9, 0.999, 1e-8, 1e-2, False, False, True)
    return p


def _sgd(B, X):
    p, buf = X["param"].copy(), np.zeros(1000, F32)
    for step, g in enumerate(X["grads"], 1):
        B.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-4, True, False, step == 1)
    return p


def _sigmoid64(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _sdpa_grad(which: int, causal: bool):
    def f(B, X):
        out, lse = B.sdpa_forward(X["aq"], X["ak"], X["av"], None, 0.3, causal)
        return B.sdpa_backward(X["ag"], X["aq"], X["ak"], X["av"], out, lse, None, 0.3, causal)[which]
    return f


CASES = {
    "add_broadcast": (lambda B, X: B.add(X["a"], X["b"]), ("exact",)),
    "mul_transposed": (lambda B, X: B.mul(X["a"], X["t"]), ("exact",)),
    "div": (lambda B, X: B.div(X["a"], X["t"]), ("exact",)),
    "maximum": (lambda B, X: B.maximum(X["a"], X["t"]), ("exact",)),
    "exp": (lambda B, X: B.exp(X["wide"]), ("ulp", 1.5, np.exp)),
    "tanh": (lambda B, X: B.tanh(X["wide"]), ("ulp", 2.5, np.tanh)),  # scalar level: glibc tanhf, 2 ulp
    "sigmoid": (lambda B, X: B.sigmoid(X["wide"]), ("ulp", 3.0, _sigmoid64)),
    "expm1": (lambda B, X: B.expm1(X["wide"]), ("ulp", 2.0, np.expm1)),
    "log1p": (lambda B, X: B.log1p(np.abs(X["wide"])), ("ulp", 2.0, lambda v: np.log1p(np.abs(v)))),
    "gelu": (lambda B, X: B.gelu(X["a"], "none"), ("close", 1)),
    "gelu_tanh": (lambda B, X: B.gelu(X["a"], "tanh"), ("close", 1)),
    "silu": (lambda B, X: B.silu(X["a"]), ("close", 1)),
    "sum_inner": (lambda B, X: B.sum(X["a"], (1,), False), ("close", 96)),
    "sum_outer": (lambda B, X: B.sum(X["a"], (0,), True), ("close", 64)),
    "amax": (lambda B, X: B.amax(X["t"], (0,), False), ("exact",)),
    "argmax": (lambda B, X: B.argmax(X["a"], 1, False), ("exact",)),
    "cast_f64_bf16": (lambda B, X: B.cast(X["cast64"], np.dtype(BF16)), ("exact",)),
    "cast_f64_f16": (lambda B, X: B.cast(X["cast64"], np.dtype(np.float16)), ("exact",)),
    "cast_f32_f16": (lambda B, X: B.cast(X["a"], np.dtype(np.float16)), ("exact",)),
    "cast_f64_int8": (lambda B, X: B.cast(X["cast64"], np.dtype(np.int8)), ("exact",)),
    "cast_f64_int32": (lambda B, X: B.cast(X["cast64"], np.dtype(np.int32)), ("exact",)),
    "cast_i64_bf16": (lambda B, X: B.cast(X["big"], np.dtype(BF16)), ("exact",)),
    "matmul": (lambda B, X: B.matmul(X["m1"], X["m2"]), ("close", 70)),
    "matmul_T": (lambda B, X: B.matmul(X["m2"].T, X["m1"].T), ("close", 70)),
    "matmul_f64": (lambda B, X: B.matmul(X["m1"].astype(np.float64), X["m2"].astype(np.float64)), ("close", 70)),
    "conv2d": (lambda B, X: B.conv2d(X["img"], X["w"], (2, 2), (1, 1), (1, 1), 1), ("close", 27)),
    "conv2d_backward_input": (lambda B, X: B.conv2d_backward_input(X["gy"], X["w"], X["img"].shape, (2, 2), (1, 1),
                                                                   (1, 1), 1), ("close", 36)),
    "conv2d_backward_weight": (lambda B, X: B.conv2d_backward_weight(X["gy"], X["img"], X["w"].shape, (2, 2), (1, 1),
                                                                     (1, 1), 1), ("close", 50)),
    "max_pool2d": (lambda B, X: B.max_pool2d(X["img"], (3, 3), (2, 2), (1, 1), (1, 1), False), ("exact",)),
    "layer_norm": (lambda B, X: B.layer_norm(X["a"], X["lnw"], X["b"], 1e-5)[0], ("close", 96)),
    "rms_norm": (lambda B, X: B.rms_norm(X["a"], X["lnw"], 1e-5)[0], ("close", 96)),
    "rms_norm_gx": (lambda B, X: B.rms_norm_backward(X["a"][::-1], X["a"], X["lnw"],
                                                     np.linspace(0.5, 2, 64, dtype=F32))[0], ("close", 96)),
    "rms_norm_gw": (lambda B, X: B.rms_norm_backward(X["a"][::-1], X["a"], X["lnw"],
                                                     np.linspace(0.5, 2, 64, dtype=F32))[1], ("close", 64)),
    "softmax": (lambda B, X: B.softmax(X["logits"], 1), ("close", 17)),
    "log_softmax": (lambda B, X: B.log_softmax(X["logits"], 1), ("close", 17)),
    "cross_entropy": (lambda B, X: B.cross_entropy_forward(X["logits"], X["target"], None, -100, 0.1)[0],
                      ("close", 17)),
    "sdpa": (lambda B, X: B.sdpa_forward(X["aq"], X["ak"], X["av"], None, 0.3, False)[0], ("close", 300)),
    "sdpa_causal": (lambda B, X: B.sdpa_forward(X["aq"], X["ak"], X["av"], None, 0.3, True)[0], ("close", 300)),
    "sdpa_gq": (_sdpa_grad(0, False), ("close", 300)),
    "sdpa_gk": (_sdpa_grad(1, True), ("close", 300)),
    "sdpa_gv": (_sdpa_grad(2, False), ("close", 300)),
    "adam": (_adam, ("exact",)),
    "sgd": (_sgd, ("exact",)),
}


def run(B) -> dict:
    """Every case's result with backend B (array results only: tuples are split by index)."""
    X, out = inputs(), {}
    with np.errstate(all="ignore"):
        for name, (f, _) in CASES.items():
            r = f(B, X)
            out[name] = np.asarray(r[0] if isinstance(r, tuple) else r)
    return out


if __name__ == "__main__":
    from tinyfw.backend import cpu

    res = run(cpu)
    np.savez(sys.argv[1], isa=np.array(cpu.isa()), **{k: (v.view(np.uint16) if v.dtype == BF16 else v)
                                                      for k, v in res.items()})
