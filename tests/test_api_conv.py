"""conv1d, conv3d, conv_transpose1d/2d/3d and conv_tbc (issue 16): the three-way table
(PyTorch forward + input/weight/bias gradients in float64 and float32, float64 gradcheck
and gradgradcheck, the active backend against ref), hypothesis over stride / padding /
dilation / groups, edge cases and error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, torch
from nn_check import compare
from op_table import KINDS, OpCase, case_id, check, normal

TF = torch.nn.functional if torch is not None else None


def _terms(x: tuple, w: tuple, out: tuple, groups: int, transposed: bool = False) -> int:
    """The longest sum of products in the op or its gradients: a forward output (C/g *
    prod(kernel)), an input gradient (O/g * prod(kernel)) or a weight gradient (N *
    prod(out)); the transposed convolutions swap the first two."""
    k = math.prod(w[2:])
    a, b = w[1] * k, w[0] // groups * k
    return max(a, b, x[0] * math.prod(out[2:]) if len(x) == len(w) else math.prod(out[1:]))


def _conv(name: str, tf_fn, th_fn, x: tuple, w: tuple, bias: bool, out: tuple, groups: int = 1,
          gradgrad: bool = False, **kw) -> OpCase:
    shapes = (x, w, (w[0] if "transpose" not in name else w[1] * groups,)) if bias else (x, w)
    terms = _terms(x, w, out, groups)
    if bias:
        return OpCase(name, lambda a, b, c: tf_fn(a, b, c, groups=groups, **kw),
                      (lambda a, b, c: th_fn(a, b, c, groups=groups, **kw)) if torch else None,
                      normal(*shapes), terms=terms, gradgrad=gradgrad)
    return OpCase(name, lambda a, b: tf_fn(a, b, groups=groups, **kw),
                  (lambda a, b: th_fn(a, b, groups=groups, **kw)) if torch else None,
                  normal(*shapes), terms=terms, gradgrad=gradgrad)


def _th(name: str):
    return getattr(TF, name) if TF is not None else None


CASES = [
    _conv("conv1d", F.conv1d, _th("conv1d"), (2, 4, 9), (6, 2, 3), True, (2, 6, 4), groups=2,
          stride=2, padding=1, dilation=2),
    _conv("conv1d_same_even", F.conv1d, _th("conv1d"), (2, 3, 8), (4, 3, 4), True, (2, 4, 8),
          padding="same"),
    _conv("conv1d_valid_unbatched", F.conv1d, _th("conv1d"), (3, 8), (4, 3, 3), False, (4, 6),
          padding="valid"),
    _conv("conv3d", F.conv3d, _th("conv3d"), (2, 4, 4, 5, 4), (6, 2, 2, 3, 2), True,
          (2, 6, 4, 2, 5), groups=2, gradgrad=True, stride=(1, 2, 1), padding=(1, 0, 1),
          dilation=(2, 1, 1)),
    _conv("conv3d_same_even", F.conv3d, _th("conv3d"), (1, 2, 4, 4, 3), (3, 2, 2, 3, 2), True,
          (1, 3, 4, 4, 3), padding="same"),
    _conv("conv3d_unbatched", F.conv3d, _th("conv3d"), (2, 3, 4, 3), (3, 2, 2, 2, 2), False,
          (3, 2, 3, 2)),
    _conv("conv_transpose1d", F.conv_transpose1d, _th("conv_transpose1d"), (2, 4, 5),
          (4, 3, 3), True, (2, 6, 10), groups=2, gradgrad=True, stride=2, padding=1,
          output_padding=1),
    _conv("conv_transpose2d", F.conv_transpose2d, _th("conv_transpose2d"), (2, 4, 4, 3),
          (4, 3, 3, 2), True, (2, 6, 8, 11), groups=2, gradgrad=True, stride=(2, 3),
          padding=(1, 0), output_padding=(1, 2), dilation=(1, 2)),
    # output_padding >= stride (allowed as it is < dilation): the extra row reads padding
    _conv("conv_transpose2d_outpad_dilation", F.conv_transpose2d, _th("conv_transpose2d"),
          (1, 2, 4, 3), (2, 3, 3, 2), False, (1, 3, 5, 3), stride=1, padding=2,
          output_padding=1, dilation=2),
    _conv("conv_transpose3d", F.conv_transpose3d, _th("conv_transpose3d"), (1, 4, 3, 3, 2),
          (4, 2, 2, 3, 2), True, (1, 4, 5, 5, 3), groups=2, gradgrad=True, stride=(2, 1, 2),
          padding=(1, 0, 1), output_padding=(1, 0, 0)),
    _conv("conv_transpose3d_unbatched", F.conv_transpose3d, _th("conv_transpose3d"),
          (2, 2, 3, 2), (2, 3, 2, 2, 2), False, (3, 3, 4, 3)),
    OpCase("conv_tbc", lambda x, w, b: F.conv_tbc(x, w, b, 1),
           (lambda x, w, b: torch.conv_tbc(x, w, b, 1)) if torch else None,
           normal((7, 2, 3), (3, 3, 5), (5,)), terms=14),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


# -- hypothesis over the geometry ----------------------------------------------------------------
def _geometry(draw, nd: int) -> dict:
    groups = draw(st.sampled_from([1, 2]))
    g = {"groups": groups,
         "cin": groups * draw(st.integers(1, 2)), "cout": groups * draw(st.integers(1, 2)),
         "k": tuple(draw(st.integers(1, 3)) for _ in range(nd)),
         "stride": tuple(draw(st.integers(1, 3)) for _ in range(nd)),
         "padding": tuple(draw(st.integers(0, 2)) for _ in range(nd)),
         "dilation": tuple(draw(st.integers(1, 2)) for _ in range(nd)),
         "n": draw(st.integers(1, 2))}
    # an input size that fits the dilated kernel after padding
    g["size"] = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 3))
                      for k, p, d in zip(g["k"], g["padding"], g["dilation"]))
    return g


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@settings(max_examples=25, deadline=None)
@given(data=st.data(), nd=st.sampled_from([1, 3]))
def test_conv_geometry_against_torch(data, nd):
    g = _geometry(data.draw, nd)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((g["n"], g["cin"]) + g["size"])
    w = rng.standard_normal((g["cout"], g["cin"] // g["groups"]) + g["k"])
    b = rng.standard_normal(g["cout"])
    kw = {"stride": g["stride"], "padding": g["padding"], "dilation": g["dilation"],
          "groups": g["groups"]}
    f, t = (F.conv1d, TF.conv1d) if nd == 1 else (F.conv3d, TF.conv3d)
    compare(lambda a, c, d: f(a, c, d, **kw), lambda a, c, d: t(a, c, d, **kw), [x, w, b])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@settings(max_examples=25, deadline=None)
@given(data=st.data(), nd=st.sampled_from([1, 2, 3]))
def test_conv_transpose_geometry_against_torch(data, nd):
    g = _geometry(data.draw, nd)
    # output_padding below stride or dilation, as PyTorch requires
    outpad = tuple(data.draw(st.integers(0, max(s, d) - 1))
                   for s, d in zip(g["stride"], g["dilation"]))
    size = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                zip(size, g["stride"], g["padding"], g["dilation"], g["k"], outpad))
    if min(out) < 1:
        return  # PyTorch refuses it too (test_errors below)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((g["n"], g["cin"]) + size)
    w = rng.standard_normal((g["cin"], g["cout"] // g["groups"]) + g["k"])
    b = rng.standard_normal(g["cout"])
    kw = {"stride": g["stride"], "padding": g["padding"], "output_padding": outpad,
          "dilation": g["dilation"], "groups": g["groups"]}
    name = f"conv_transpose{nd}d"
    compare(lambda a, c, d: getattr(F, name)(a, c, d, **kw),
            lambda a, c, d: getattr(TF, name)(a, c, d, **kw), [x, w, b])


# -- edge cases ---------------------------------------------------------------------------------
@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@pytest.mark.parametrize("name,x,w", [
    ("conv1d", (0, 2, 5), (3, 2, 2)), ("conv3d", (0, 2, 3, 3, 3), (3, 2, 2, 2, 2)),
    ("conv_transpose1d", (0, 2, 5), (2, 3, 2)), ("conv_transpose2d", (0, 2, 3, 3), (2, 3, 2, 2)),
    ("conv_transpose3d", (0, 2, 3, 3, 3), (2, 3, 2, 2, 2))])
def test_empty_batch(name, x, w):
    rng = np.random.default_rng(0)
    compare(getattr(F, name), getattr(TF, name),
            [rng.standard_normal(x), rng.standard_normal(w)])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@pytest.mark.parametrize("name,x,w", [
    ("conv1d", (2, 2, 7), (3, 2, 3)), ("conv3d", (1, 2, 4, 4, 4), (3, 2, 2, 2, 2)),
    ("conv_transpose2d", (1, 2, 4, 4), (2, 3, 2, 2)),
    ("conv_transpose3d", (1, 2, 3, 3, 3), (2, 3, 2, 2, 2))])
@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_nan_and_inf_reach_the_outputs_that_read_them(name, x, w, special):
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal(x), np.abs(rng.standard_normal(w))  # one sign: no inf - inf
    xa.reshape(-1)[3] = special
    got = npy(getattr(F, name)(tinyfw.tensor(xa), tinyfw.tensor(wa)))
    want = getattr(TF, name)(torch.tensor(xa), torch.tensor(wa)).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-12, atol=1e-12)


def test_conv1d_is_conv2d_on_a_view():
    # conv1d adds no arithmetic of its own: equal bit for bit to conv2d with H = 1
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3))
    a = F.conv1d(tinyfw.tensor(x), tinyfw.tensor(w), stride=2, padding=1)
    b = F.conv2d(tinyfw.tensor(x[:, :, None]), tinyfw.tensor(w[:, :, None]), stride=(1, 2),
                 padding=(0, 1))
    np.testing.assert_array_equal(npy(a), npy(b)[:, :, 0])


# -- errors ------------------------------------------------------------------------------------
def _t(*shape):
    return tinyfw.zeros(*shape)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.conv1d(_t(2, 3, 4, 5), _t(4, 3, 3)), RuntimeError, r"conv1d: expected a 2-d .* got shape \(2, 3, 4, 5\)"),
    (lambda: F.conv1d(_t(2, 3, 8), _t(4, 3, 3, 3)), RuntimeError, r"conv1d: weight must be 3-d"),
    (lambda: F.conv1d(_t(2, 3, 8), _t(4, 2, 3)), RuntimeError, r"conv1d: input \(2, 3, 8\) has 3 channels"),
    (lambda: F.conv1d(_t(2, 4, 8), _t(3, 2, 3), groups=2), RuntimeError, r"groups=2 does not divide the 3"),
    (lambda: F.conv1d(_t(2, 3, 2), _t(4, 3, 3)), RuntimeError, r"conv1d: the \(dilated\) kernel size \(3,\) is larger"),
    (lambda: F.conv1d(_t(2, 3, 8), _t(4, 3, 3), stride=2, padding="same"), ValueError, r"'same' is not supported for strided"),
    (lambda: F.conv1d(_t(2, 3, 8), _t(4, 3, 3), padding="full"), ValueError, r"conv1d: padding must be"),
    (lambda: F.conv3d(_t(1, 3, 1, 4, 4), _t(4, 3, 2, 2, 2)), RuntimeError, r"conv3d: the \(dilated\) kernel"),
    (lambda: F.conv3d(_t(3, 4, 4), _t(4, 3, 2, 2, 2)), RuntimeError, r"conv3d: expected a 4-d"),
    (lambda: F.conv3d(_t(1, 3, 4, 4, 4), _t(4, 3, 2, 2, 2), stride=0), ValueError, r"conv3d: stride must be >= 1"),
    (lambda: F.conv3d(_t(1, 3, 4, 4, 4), _t(4, 3, 2, 2, 2), _t(3)), RuntimeError, r"conv3d: bias must have shape \(4,\)"),
    (lambda: F.conv3d(_t(1, 3, 4, 4, 4), _t(4, 3, 2, 2, 2).double()), TypeError, r"conv3d: weight dtype float64"),
    (lambda: F.conv3d(tinyfw.zeros(1, 3, 4, 4, 4, dtype=tinyfw.int64), _t(4, 3, 2, 2, 2)), TypeError, r"conv3d: input must be a floating"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(4, 2, 2, 2)), RuntimeError, r"conv_transpose2d: input \(1, 3, 4, 4\) has 3 channels but weight \(4, 2, 2, 2\) expects 4"),
    (lambda: F.conv_transpose2d(_t(1, 4, 4, 4), _t(4, 2, 2, 2), stride=2, output_padding=2), ValueError, r"output_padding \(2, 2\) must be smaller than either stride"),
    (lambda: F.conv_transpose1d(_t(1, 4, 1), _t(4, 2, 1), padding=1), RuntimeError, r"non-positive output size"),
    (lambda: F.conv_transpose3d(_t(1, 3, 2, 2, 2), _t(3, 2, 2, 2, 2), groups=2), RuntimeError, r"groups=2 does not divide the 3 input channels"),
    (lambda: F.conv_tbc(_t(5, 2, 3), _t(2, 4, 5), _t(5)), RuntimeError, r"conv_tbc: input \(5, 2, 3\) has 3 channels"),
])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
def test_torch_also_refuses_the_output_padding_above_stride_and_dilation():
    with pytest.raises(RuntimeError):
        TF.conv_transpose2d(torch.zeros(1, 4, 4, 4), torch.zeros(4, 2, 2, 2), stride=2,
                            output_padding=2)
