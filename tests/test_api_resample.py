"""Issue 16, resampling: interpolate (every mode, size / scale_factor, align_corners,
recompute_scale_factor), grid_sample, affine_grid and the Upsample layers against PyTorch
(op_table's three-way check), hypothesis over sizes and scales, edge cases and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check, normal

TF = torch.nn.functional if torch is not None else None
SHAPES = {1: (2, 3, 7), 2: (2, 3, 5, 6), 3: (2, 2, 4, 5, 3)}
MODE_DIMS = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "area": (1, 2, 3),
             "linear": (1,), "bilinear": (2,), "bicubic": (2,), "trilinear": (3,)}


def interp(mode: str, n: int, **kw) -> OpCase:
    return OpCase(f"interpolate-{mode}-{n}d-{kw}",
                  lambda x: F.interpolate(x, mode=mode, **kw),
                  lambda x: TF.interpolate(x, mode=mode, **kw), normal(SHAPES[n]), terms=16)


def _interp_cases() -> list:
    cases = []
    for mode, dims in MODE_DIMS.items():
        corners = [{}] if mode in ("nearest", "nearest-exact", "area") else \
            [{"align_corners": False}, {"align_corners": True}]
        for n in dims:
            for ac in corners:
                cases.append(interp(mode, n, size=(9, 4, 6)[:n], **ac))
                cases.append(interp(mode, n, scale_factor=1.7, **ac))
            cases.append(interp(mode, n, scale_factor=0.6, **corners[0]))
            cases.append(interp(mode, n, scale_factor=(2.0, 0.5, 1.5)[:n],
                                recompute_scale_factor=True, **corners[-1]))
    return cases


def grid_inputs(n: int, low: float = -1.2, high: float = 1.2):
    def make(rng, dtype):
        xs = (2, 3, 5, 6) if n == 2 else (2, 2, 4, 5, 3)
        gs = (2, 4, 3, 2) if n == 2 else (2, 3, 2, 4, 3)
        return [rng.standard_normal(xs).astype(dtype), rng.uniform(low, high, gs).astype(dtype)]
    return make


def gs(mode: str, pad: str, align: bool, n: int) -> OpCase:
    # the grid gradient is a sum over the taps of value * weight derivative * size / 2:
    # bicubic's 16 taps with derivatives up to ~1.5 and W / 2 = 3 cancel down to results
    # far smaller than the terms, so its float32 error is that of ~16 * 16 unit terms
    terms = 256 if mode == "bicubic" else 16
    # the bicubic / reflected grid gradient has kinks where a tap crosses an integer: a
    # smaller step keeps central differences on one side
    return OpCase(f"grid_sample-{mode}-{pad}-{align}-{n}d",
                  lambda x, g: F.grid_sample(x, g, mode, pad, align),
                  lambda x, g: TF.grid_sample(x, g, mode, pad, align), grid_inputs(n),
                  terms=terms, eps=1e-7, gc_atol=1e-5)


CASES = _interp_cases() + [
    gs(mode, pad, align, n) for n in (2, 3) for mode in ("bilinear", "nearest", "bicubic")
    for pad in ("zeros", "border", "reflection") for align in (False, True)
    if not (mode == "bicubic" and n == 3)
] + [
    OpCase(f"affine_grid-{n}d-{align}", lambda t, n=n, a=align: F.affine_grid(
        t, (2, 3, 4, 5, 3)[:n + 2], a),
        lambda t, n=n, a=align: TF.affine_grid(t, (2, 3, 4, 5, 3)[:n + 2], a),
        normal((2, n, n + 1)), terms=4) for n in (2, 3) for align in (False, True)
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def test_second_derivatives():
    """The resampling op's backward is its adjoint op; grid_sample's grid gradient goes
    through the tap weights: both differentiate again."""
    rng = np.random.default_rng(0)
    x = tinyfw.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    g = tinyfw.tensor(rng.uniform(-0.9, 0.9, (1, 2, 3, 2)), requires_grad=True)
    assert tinyfw.gradgradcheck(lambda a: F.interpolate(a, scale_factor=1.5, mode="bicubic") ** 2,
                                [x])
    assert tinyfw.gradgradcheck(lambda a, b: F.grid_sample(a, b, align_corners=False), [x, g])


@requires_torch
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_interpolate_hypothesis(n, data, seed):
    """Random sizes, scales (up and down, recomputed or not) and modes: values and input
    gradients against PyTorch in float64; nearest picks the very same source elements."""
    modes = [m for m, dims in MODE_DIMS.items() if n in dims]
    mode = data.draw(st.sampled_from(modes))
    sizes = [data.draw(st.integers(1, 9)) for _ in range(n)]
    kw = {}
    if data.draw(st.booleans()):
        kw["size"] = [data.draw(st.integers(1, 12)) for _ in range(n)]
    else:
        kw["scale_factor"] = [data.draw(st.floats(0.3, 3.5)) for _ in range(n)]
        if any(int(s * f) < 1 for s, f in zip(sizes, kw["scale_factor"])):
            return
        kw["recompute_scale_factor"] = data.draw(st.sampled_from([None, True]))
    if mode not in ("nearest", "nearest-exact", "area"):
        kw["align_corners"] = data.draw(st.booleans())
    x = np.random.default_rng(seed).standard_normal([2, 2] + sizes)
    a, b = tinyfw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yf, yt = F.interpolate(a, mode=mode, **kw), TF.interpolate(b, mode=mode, **kw)
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(npy(yf), yt.detach().numpy())
    assert_close(yf, yt, "float64")
    gr = np.random.default_rng(seed + 1).standard_normal(tuple(yt.shape))
    (yf * tinyfw.tensor(gr)).sum().backward()
    (yt * torch.tensor(gr)).sum().backward()
    assert_close(a.grad, b.grad, "float64")


@requires_torch
def test_nan_inf_stay_local():
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 7))
    x[0, 0, 2, 3], x[0, 1, 4, 1] = np.nan, np.inf
    for mode, kw in (("nearest", {}), ("bilinear", {"align_corners": False}),
                     ("bicubic", {"align_corners": True}), ("area", {})):
        for size in ((3, 4), (11, 9)):
            yf = F.interpolate(tinyfw.tensor(x), size, mode=mode, **kw)
            yt = TF.interpolate(torch.tensor(x), size, mode=mode, **kw)
            assert_close(yf, yt, "float64", msg=f"{mode} {size}")
    e = np.zeros((0, 3, 4, 5))
    assert_close(F.interpolate(tinyfw.tensor(e), scale_factor=2.0, mode="bilinear"),
                 TF.interpolate(torch.tensor(e), scale_factor=2.0, mode="bilinear"), "float64")


LAYERS = [
    (lambda m: m.Upsample(scale_factor=2), (2, 3, 4, 5)),
    (lambda m: m.Upsample(size=(5, 7, 4), mode="trilinear", align_corners=True), (1, 2, 3, 4, 5)),
    (lambda m: m.Upsample(scale_factor=1.5, mode="linear"), (2, 3, 5)),
    (lambda m: m.Upsample(size=7, mode="bicubic"), (2, 3, 4, 5)),
    (lambda m: m.UpsamplingNearest2d(scale_factor=3), (2, 3, 4, 5)),
    (lambda m: m.UpsamplingBilinear2d(size=(6, 9)), (2, 3, 4, 5)),
]


@requires_torch
@pytest.mark.parametrize("make,shape", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_layers(make, shape):
    compare(make(torch.nn), make(nn), [np.random.default_rng(3).standard_normal(shape)],
            "float64")


def _x(*shape):
    return tinyfw.zeros(*shape)


ERRORS = [
    (lambda: F.interpolate(_x(1, 1, 4), 3, scale_factor=2.0),
     "only one of size or scale_factor should be defined"),
    (lambda: F.interpolate(_x(1, 1, 4)), "either size or scale_factor should be defined"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), (2, 3, 4)),
     r"spatial dimensions of \[4, 4\] and output size of \(2, 3, 4\)"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), 2, mode="nearest", align_corners=True),
     "align_corners option can only be set with the interpolating modes"),
    (lambda: F.interpolate(_x(1, 1, 4), 2, mode="bilinear"),
     "interpolate: got 3D input, but bilinear mode needs 4D input"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), 2, mode="cubic"), "mode 'cubic' is not one of"),
    (lambda: F.interpolate(_x(4, 4), 2), r"only 3D, 4D and 5D input tensors are supported"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), 2, recompute_scale_factor=True),
     "recompute_scale_factor is not meaningful with an explicit size"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), scale_factor=0.1),
     r"interpolate: output size \(0, 0\) must be positive"),
    (lambda: F.interpolate(_x(1, 1, 4, 4), 8, mode="bilinear", antialias=True),
     "antialias=True is not supported"),
    (lambda: F.interpolate(_x(1, 1, 4), 8, mode="linear", antialias=True),
     "anti-alias option is restricted to bilinear and bicubic"),
    (lambda: F.grid_sample(_x(1, 1, 4, 4), _x(1, 3, 3, 3)),
     r"grid of shape \(1, 3, 3, 3\) does not fit input \(1, 1, 4, 4\)"),
    (lambda: F.grid_sample(_x(1, 1, 4, 4, 4), _x(1, 2, 2, 2, 3), mode="bicubic"),
     "bicubic interpolation only supports 4-d input"),
    (lambda: F.grid_sample(_x(1, 1, 4, 4), _x(1, 3, 3, 2), padding_mode="wrap"),
     "padding_mode must be 'zeros', 'border' or 'reflection', got 'wrap'"),
    (lambda: F.affine_grid(_x(2, 2, 3), (2, 1, 4)), "only supports 4D and 5D sizes"),
    (lambda: F.affine_grid(_x(2, 3, 4), (2, 1, 4, 4)),
     r"expected a batch of 2D affine matrices of shape Nx2x3 for size \(2, 1, 4, 4\)"),
]


@pytest.mark.parametrize("fn,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_problem(fn, msg):
    with pytest.raises((ValueError, RuntimeError, TypeError, NotImplementedError), match=msg):
        fn()
