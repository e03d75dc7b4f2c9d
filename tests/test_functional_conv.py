"""conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d: against PyTorch on hypothesis-drawn
geometries, gradcheck / gradgradcheck on tiny inputs, and the error cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import from_np, npy, requires_torch, torch
from nn_check import arrays, compare, leaves

if torch is not None:
    import torch.nn.functional as TF

DTYPES = ["float32", "float64"]
pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, s, d = draw(pairs), draw(pairs), draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    p = draw(st.tuples(st.integers(0, 2), st.integers(0, 2)))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    assume(h + 2 * p[0] >= d[0] * (k[0] - 1) + 1 and w + 2 * p[1] >= d[1] * (k[1] - 1) + 1)
    return {"n": draw(st.integers(1, 2)), "cin": cin, "cout": cout, "k": k, "stride": s,
            "padding": p, "dilation": d, "groups": groups, "hw": (h, w),
            "bias": draw(st.booleans()), "transposed": draw(st.booleans())}


@requires_torch
@given(c=conv_cases(), dtype=st.sampled_from(DTYPES))
def test_conv2d_matches_torch(c, dtype):
    rng = np.random.default_rng(c["hw"][0] * 7 + c["hw"][1])
    x = arrays(rng, (c["n"], c["cin"]) + c["hw"], dtype, c["transposed"])
    w = arrays(rng, (c["cout"], c["cin"] // c["groups"]) + c["k"], dtype)
    b = rng.standard_normal(c["cout"]).astype(dtype) if c["bias"] else None
    kw = {"stride": c["stride"], "padding": c["padding"], "dilation": c["dilation"],
          "groups": c["groups"]}
    terms = c["cin"] * c["k"][0] * c["k"][1]
    compare(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw),
            [x, w, b], dtype, terms=terms, grad_terms=terms * c["n"] * c["hw"][0] * c["hw"][1])


@requires_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel,dilation", [((3, 3), 1), ((2, 4), 1), ((2, 3), (2, 1))])
def test_conv2d_string_padding(padding, kernel, dilation):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 6, 7)), rng.standard_normal((3, 2) + kernel)
    compare(lambda x, w: F.conv2d(x, w, padding=padding, dilation=dilation),
            lambda x, w: TF.conv2d(x, w, padding=padding, dilation=dilation), [x, w])


@requires_torch
def test_conv2d_unbatched_input():
    rng = np.random.default_rng(2)
    compare(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
            [rng.standard_normal((2, 4, 4)), rng.standard_normal((3, 2, 3, 3))])


def test_conv2d_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(3)
    x, w, b = leaves(rng, (1, 4, 4, 3), (2, 2, 2, 2), (2,))

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)

    assert tinyfw.gradcheck(f, [x, w, b])
    assert tinyfw.gradgradcheck(f, [x, w, b])


# -- pooling -----------------------------------------------------------------------------------------
@st.composite
def pool_cases(draw, dilated: bool):
    k = draw(pairs)
    s = draw(st.one_of(st.none(), pairs))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = draw(st.tuples(st.integers(1, 2), st.integers(1, 2))) if dilated else (1, 1)
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    assume(h + 2 * p[0] >= d[0] * (k[0] - 1) + 1 and w + 2 * p[1] >= d[1] * (k[1] - 1) + 1)
    return {"shape": (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), "k": k, "s": s,
            "p": p, "d": d, "ceil": draw(st.booleans()), "transposed": draw(st.booleans())}


@requires_torch
@given(c=pool_cases(dilated=True), dtype=st.sampled_from(DTYPES))
def test_max_pool2d_matches_torch(c, dtype):
    rng = np.random.default_rng(sum(c["shape"]))
    x = arrays(rng, c["shape"], dtype, c["transposed"])
    kw = {"kernel_size": c["k"], "stride": c["s"], "padding": c["p"], "dilation": c["d"],
          "ceil_mode": c["ceil"]}
    _, idx = F.max_pool2d(from_np(x), return_indices=True, **kw)
    # windows with no input element (dilation over padding) are checked separately:
    # PyTorch's index there is arbitrary and its gradient can land in another channel
    assume((npy(idx) >= 0).all())
    compare(lambda x: F.max_pool2d(x, **kw), lambda x: TF.max_pool2d(x, **kw), [x], dtype)
    _, tidx = TF.max_pool2d(torch.from_numpy(np.array(x)), return_indices=True, **kw)
    np.testing.assert_array_equal(npy(idx), tidx.numpy())


def test_max_pool2d_window_without_input_elements():
    x = tinyfw.tensor([[[[0.5], [2.0]]]], requires_grad=True)  # (1, 1, 2, 1)
    y, idx = F.max_pool2d(x, (1, 2), padding=(0, 1), dilation=(1, 2), return_indices=True)
    assert y.shape == (1, 1, 2, 1) and np.isneginf(npy(y)).all()
    np.testing.assert_array_equal(npy(idx), -1)
    y.backward(tinyfw.ones(1, 1, 2, 1))
    np.testing.assert_array_equal(npy(x.grad), 0)


@requires_torch
@given(c=pool_cases(dilated=False), dtype=st.sampled_from(DTYPES),
       include=st.booleans(), divisor=st.sampled_from([None, 3]))
def test_avg_pool2d_matches_torch(c, dtype, include, divisor):
    x = arrays(np.random.default_rng(sum(c["shape"])), c["shape"], dtype, c["transposed"])
    kw = {"kernel_size": c["k"], "stride": c["s"], "padding": c["p"], "ceil_mode": c["ceil"],
          "count_include_pad": include, "divisor_override": divisor}
    compare(lambda x: F.avg_pool2d(x, **kw), lambda x: TF.avg_pool2d(x, **kw), [x], dtype,
            terms=c["k"][0] * c["k"][1])


@requires_torch
@given(hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       out=st.tuples(st.one_of(st.none(), st.integers(1, 5)), st.integers(1, 5)),
       dtype=st.sampled_from(DTYPES))
def test_adaptive_avg_pool2d_matches_torch(hw, out, dtype):
    x = arrays(np.random.default_rng(hw[0]), (2, 3) + hw, dtype)
    compare(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out),
            [x], dtype, terms=hw[0] * hw[1])


@requires_torch
def test_pools_unbatched_and_max_pool_ties():
    x = np.zeros((1, 4, 4))
    x[0, 1, 1] = x[0, 1, 2] = 5.0  # a tie: the first maximum wins, as in PyTorch
    compare(lambda x: F.max_pool2d(x, 2, 1), lambda x: TF.max_pool2d(x, 2, 1), [x])
    compare(lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1), [x])
    compare(lambda x: F.adaptive_avg_pool2d(x, 3), lambda x: TF.adaptive_avg_pool2d(x, 3), [x])


POOLS = {
    "max": lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 1), (1, 1), ceil_mode=True),
    "max_dilated": lambda x: F.max_pool2d(x, 2, 1, 0, dilation=2),
    "avg": lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_divisor": lambda x: F.avg_pool2d(x, 2, 1, divisor_override=3),
    "adaptive": lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pools_gradcheck_and_gradgradcheck(name):
    (x,) = leaves(np.random.default_rng(4), (1, 2, 4, 5))
    assert tinyfw.gradcheck(POOLS[name], [x])
    assert tinyfw.gradgradcheck(POOLS[name], [x])


# -- errors ------------------------------------------------------------------------------------------
def _t(*shape, dtype=None):
    return tinyfw.zeros(*shape, dtype=dtype)


ERRORS = [
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)), RuntimeError,
     "conv2d: input (1, 3, 5, 5) has 3 channels but weight (4, 2, 3, 3) with groups=1 expects 2"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2), RuntimeError,
     "groups=2 does not divide the 3 output channels"),
    (lambda: F.conv2d(_t(1, 2, 2, 2), _t(1, 2, 3, 3)), RuntimeError,
     "the (dilated) kernel size (3, 3) is larger than the padded input size (2, 2)"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(1, 2, 3, 3), dilation=3), RuntimeError,
     "kernel size (7, 7) is larger"),
    (lambda: F.conv2d(_t(2, 5, 5), _t(1, 2, 3)), RuntimeError, "weight must be 4-d"),
    (lambda: F.conv2d(_t(5, 5), _t(1, 1, 3, 3)), RuntimeError,
     "expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape (5, 5)"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3, dtype=tinyfw.float64)), TypeError,
     "weight dtype float64 does not match the input's float32"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(2, 1, 3, 3), _t(3)), RuntimeError,
     "bias must have shape (2,), got (3,)"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), stride=0), ValueError, "stride must be >= 1"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding=-1), ValueError,
     "padding must be >= 0"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding="same", stride=2), ValueError,
     "padding='same' is not supported for strided"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding="full"), ValueError,
     "padding must be an int, a pair, 'valid' or 'same'"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), groups=0), ValueError,
     "groups must be a positive int"),
    (lambda: F.conv2d(_t(1, 1, 5, 5, dtype=tinyfw.int64), _t(1, 1, 3, 3)), TypeError,
     "conv2d: input must be a floating-point tensor, got int64"),
    (lambda: F.max_pool2d(_t(1, 1, 2, 2), 3), RuntimeError,
     "max_pool2d: input (1, 1, 2, 2) is too small for kernel (3, 3)"),
    (lambda: F.max_pool2d(_t(1, 1, 5, 5), 2, padding=2), ValueError,
     "padding (2, 2) must be at most half of the kernel size (2, 2)"),
    (lambda: F.max_pool2d(_t(1, 1, 5, 5), 0), ValueError, "kernel_size must be >= 1"),
    (lambda: F.max_pool2d(_t(1, 1, 5, 5), 2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda: F.max_pool2d(_t(1, 5, 5), (2, 2, 2)), ValueError,
     "kernel_size must be an int or a pair"),
    (lambda: F.avg_pool2d(_t(1, 1, 5, 5), 2, divisor_override=0), ValueError,
     "divisor_override must be a non-zero int"),
    (lambda: F.avg_pool2d(_t(1, 1, 1, 5), 2), RuntimeError, "avg_pool2d: input (1, 1, 1, 5)"),
    (lambda: F.avg_pool2d(_t(5), 2), RuntimeError, "got shape (5,)"),
    (lambda: F.adaptive_avg_pool2d(_t(1, 1, 4, 4), (2, 0)), RuntimeError,
     "cannot pool input (1, 1, 4, 4) to size (2, 0)"),
]


@pytest.mark.parametrize("call,exc,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert msg in str(info.value)
