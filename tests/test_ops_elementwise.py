"""Elementwise ops: forward and backward against PyTorch on hypothesis-generated shapes,
layouts and dtypes; gradcheck in float64 for every differentiable op."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinyfw
from core_util import FLOAT_DTYPES, HALF_DTYPES, layouts, make, make_int, seeds, shapes
from helpers import assert_close, npy, requires_torch, torch

F = None if torch is None else torch.nn.functional

# name: (tinyfw fn, torch fn, input domain, differentiable)
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, "any", True),
    "abs": (lambda x: x.abs(), lambda x: x.abs(), "any", True),
    "exp": (tinyfw.exp, lambda x: x.exp(), "any", True),
    "log": (tinyfw.log, lambda x: x.log(), "pos", True),
    "log1p": (tinyfw.log1p, lambda x: x.log1p(), "pos", True),
    "expm1": (tinyfw.expm1, lambda x: x.expm1(), "any", True),
    "sqrt": (tinyfw.sqrt, lambda x: x.sqrt(), "pos", True),
    "rsqrt": (tinyfw.rsqrt, lambda x: x.rsqrt(), "pos", True),
    "reciprocal": (tinyfw.reciprocal, lambda x: x.reciprocal(), "pos", True),
    "sin": (tinyfw.sin, lambda x: x.sin(), "any", True),
    "cos": (tinyfw.cos, lambda x: x.cos(), "any", True),
    "tanh": (tinyfw.tanh, lambda x: x.tanh(), "any", True),
    "sigmoid": (tinyfw.sigmoid, lambda x: x.sigmoid(), "any", True),
    "erf": (tinyfw.erf, lambda x: x.erf(), "any", True),
    "erfc": (tinyfw.erfc, lambda x: x.erfc(), "any", True),
    "relu": (tinyfw.relu, lambda x: x.relu(), "any", True),
    "leaky_relu": (lambda x: tinyfw.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2), "any", True),
    "gelu": (tinyfw.gelu, lambda x: F.gelu(x), "any", True),
    "gelu_tanh": (lambda x: tinyfw.gelu(x, approximate="tanh"),
                  lambda x: F.gelu(x, approximate="tanh"), "any", True),
    "silu": (tinyfw.silu, lambda x: F.silu(x), "any", True),
    "softplus": (tinyfw.softplus, lambda x: F.softplus(x), "any", True),
    "softplus_beta": (lambda x: tinyfw.softplus(x, beta=2.0, threshold=1.0),
                      lambda x: F.softplus(x, beta=2.0, threshold=1.0), "any", True),
    "square": (tinyfw.square, lambda x: x.square(), "any", True),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7), "any", True),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1), "any", True),
    "sign": (tinyfw.sign, lambda x: x.sign(), "any", True),
    "floor": (tinyfw.floor, lambda x: x.floor(), "any", True),
    "ceil": (tinyfw.ceil, lambda x: x.ceil(), "any", True),
    "round": (tinyfw.round, lambda x: x.round(), "any", True),
    "trunc": (tinyfw.trunc, lambda x: x.trunc(), "any", True),
}

# name: (tinyfw fn, torch fn, domain of a, domain of b)
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, "any", "any"),
    "add_alpha": (lambda a, b: tinyfw.add(a, b, alpha=2.5),
                  lambda a, b: torch.add(a, b, alpha=2.5), "any", "any"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "any", "any"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "any", "any"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "any", "pos"),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, "pos", "any"),
    "maximum": (tinyfw.maximum, lambda a, b: torch.maximum(a, b), "any", "any"),
    "minimum": (tinyfw.minimum, lambda a, b: torch.minimum(a, b), "any", "any"),
    "atan2": (tinyfw.atan2, lambda a, b: torch.atan2(a, b), "any", "any"),
    "remainder": (lambda a, b: a % b, lambda a, b: a % b, "any", "pos"),
}

COMPARE = {
    "eq": (lambda a, b: a == b, lambda a, b: a == b),
    "ne": (lambda a, b: a != b, lambda a, b: a != b),
    "lt": (lambda a, b: a < b, lambda a, b: a < b),
    "le": (lambda a, b: a <= b, lambda a, b: a <= b),
    "gt": (lambda a, b: a > b, lambda a, b: a > b),
    "ge": (lambda a, b: a >= b, lambda a, b: a >= b),
}

# compositions (gelu, softplus ...) and chained backward formulas round more than one op
BACKWARD_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}


def _backward_both(p_list, out_tf, out_th, seed):
    """Backward a random upstream gradient through both graphs; compare the leaf grads."""
    g = np.random.default_rng(seed + 1).standard_normal(out_tf.shape)
    out_tf.backward(tinyfw.tensor(g, dtype=out_tf.dtype))
    out_th.backward(torch.tensor(g, dtype=out_th.dtype))
    dt = out_tf.dtype.name
    r, a = BACKWARD_TOL[dt]
    for p in p_list:
        if p.th_leaf.grad is None:
            assert p.tf_leaf.grad is None or not to_np(p.tf_leaf.grad).any()
            continue
        assert_close(p.tf_leaf.grad, p.th_leaf.grad, dt, rtol=r, atol=a)


def to_np(t):
    return npy(t)


@requires_torch
@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=shapes, layout=layouts, dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_unary_vs_torch(name, shape, layout, dtype, seed):
    tf_fn, th_fn, domain, diff = UNARY[name]
    p = make(shape, layout, dtype, seed, domain, requires_grad=True)
    out_tf, out_th = tf_fn(p.tf), th_fn(p.th)
    assert out_tf.dtype.name == str(out_th.dtype).split(".")[1]
    assert_close(out_tf, out_th, dtype, msg=name)
    if diff:
        _backward_both([p], out_tf, out_th, seed)


@requires_torch
@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_unary_half_vs_torch(name, dtype):
    tf_fn, th_fn, domain, _ = UNARY[name]
    p = make((3, 5), "T", dtype, 7, domain)
    out_tf, out_th = tf_fn(p.tf), th_fn(p.th)
    assert out_tf.dtype.name == dtype
    assert_close(out_tf, out_th, dtype, msg=name)


@requires_torch
@pytest.mark.parametrize("name", ["neg", "abs", "relu", "sign", "square", "clamp"])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_unary_int_vs_torch(name, dtype):
    tf_fn, th_fn, _, _ = UNARY[name]
    p = make_int((4, 3), dtype, 3)
    out_tf, out_th = tf_fn(p.tf), th_fn(p.th)
    assert out_tf.dtype.name == str(out_th.dtype).split(".")[1]
    np.testing.assert_array_equal(npy(out_tf), out_th.numpy())


@requires_torch
@pytest.mark.parametrize("name", ["exp", "sqrt", "sin", "sigmoid", "tanh", "log"])
def test_unary_int_input_gives_float(name):
    tf_fn, th_fn, _, _ = UNARY[name]
    p = make_int((5,), "int64", 1)
    p = make_int((5,), "int64", 1) if name not in ("sqrt", "log") else \
        type(p)(p.tf.abs() + 1, p.th.abs() + 1, None, None)
    out_tf, out_th = tf_fn(p.tf), th_fn(p.th)
    assert out_tf.dtype is tinyfw.float32
    assert_close(out_tf, out_th, "float32")


@requires_torch
@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                            max_side=4),
       la=layouts, lb=layouts, dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_binary_vs_torch(name, shapes, la, lb, dtype, seed):
    tf_fn, th_fn, da, db = BINARY[name]
    sa, sb = shapes.input_shapes
    a = make(sa, la, dtype, seed, da, requires_grad=True)
    b = make(sb, lb, dtype, seed + 7, db, requires_grad=True)
    out_tf, out_th = tf_fn(a.tf, b.tf), th_fn(a.th, b.th)
    assert out_tf.shape == tuple(out_th.shape)
    assert_close(out_tf, out_th, dtype, msg=name)
    _backward_both([a, b], out_tf, out_th, seed)


@requires_torch
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_binary_half_vs_torch(name, dtype):
    tf_fn, th_fn, da, db = BINARY[name]
    a, b = make((3, 4), "T", dtype, 1, da), make((4,), "sliced", dtype, 2, db)
    assert_close(tf_fn(a.tf, b.tf), th_fn(a.th, b.th), dtype, msg=name)


@requires_torch
@pytest.mark.parametrize("name", ["add", "sub", "mul", "maximum", "minimum", "remainder"])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_binary_int_vs_torch(name, dtype):
    tf_fn, th_fn, _, _ = BINARY[name]
    a, b = make_int((3, 4), dtype, 1), make_int((4,), dtype, 2)
    if name == "remainder":
        b = type(b)(b.tf.abs() + 1, b.th.abs() + 1, None, None)
    out_tf, out_th = tf_fn(a.tf, b.tf), th_fn(a.th, b.th)
    assert out_tf.dtype.name == str(out_th.dtype).split(".")[1]
    np.testing.assert_array_equal(npy(out_tf), out_th.numpy())


@requires_torch
@pytest.mark.parametrize("name", sorted(COMPARE))
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4),
       dtype=st.sampled_from(FLOAT_DTYPES + HALF_DTYPES + ("int32",)), seed=seeds)
def test_comparisons_vs_torch(name, shapes, dtype, seed):
    tf_fn, th_fn = COMPARE[name]
    sa, sb = shapes.input_shapes
    if dtype == "int32":
        a, b = make_int(sa, dtype, seed), make_int(sb, dtype, seed + 1)
    else:  # integer-valued floats, so that ties happen
        a, b = make(sa, "contig", dtype, seed, "int"), make(sb, "T", dtype, seed + 1, "int")
    out_tf, out_th = tf_fn(a.tf, b.tf), th_fn(a.th, b.th)
    assert out_tf.dtype is tinyfw.bool
    np.testing.assert_array_equal(npy(out_tf), out_th.numpy())


@requires_torch
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=4),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_where_vs_torch(shapes, dtype, seed):
    sc, sa, sb = shapes.input_shapes
    cond = np.asarray(np.random.default_rng(seed).random(sc) > 0.5)
    a = make(sa, "T", dtype, seed, requires_grad=True)
    b = make(sb, "sliced", dtype, seed + 1, requires_grad=True)
    out_tf = tinyfw.where(tinyfw.tensor(cond), a.tf, b.tf)
    out_th = torch.where(torch.from_numpy(cond), a.th, b.th)
    assert_close(out_tf, out_th, dtype)
    _backward_both([a, b], out_tf, out_th, seed)
    # the method form and a scalar branch
    assert_close(a.tf.where(tinyfw.tensor(cond), 0.5), torch.where(torch.from_numpy(cond), a.th, 0.5),
                 dtype)


@requires_torch
@pytest.mark.parametrize("scalar", [2, 2.5, True, -1])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "rsub", "rdiv", "rpow"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_python_scalars_vs_torch(op, scalar, dtype):
    """Scalars on either side, with PyTorch's result dtype."""
    if op in ("pow",) and dtype.startswith("int") and isinstance(scalar, int) and scalar < 0:
        pytest.skip("integers to negative powers are an error in both")
    p = make_int((2, 3), dtype, 4) if dtype.startswith("int") else make((2, 3), "T", dtype, 4, "pos")
    if op in ("rdiv", "rpow") and dtype.startswith("int"):
        p = type(p)(p.tf.abs() + 1, p.th.abs() + 1, None, None)
    fns = {"add": lambda x: x + scalar, "sub": lambda x: x - scalar, "mul": lambda x: x * scalar,
           "div": lambda x: x / scalar, "pow": lambda x: x ** scalar,
           "rsub": lambda x: scalar - x, "rdiv": lambda x: scalar / x, "rpow": lambda x: scalar ** x}
    if op in ("sub", "rsub") and isinstance(scalar, bool):
        pytest.skip("subtraction with a bool is an error in PyTorch")
    out_tf, out_th = fns[op](p.tf), fns[op](p.th)
    assert out_tf.dtype.name == str(out_th.dtype).split(".")[1], (op, scalar, dtype)
    assert_close(out_tf, out_th, out_tf.dtype.name if out_tf.dtype.is_floating_point else "int")


@requires_torch
def test_div_rounding_modes_vs_torch():
    a = make((4, 5), "contig", "float32", 1)
    b = make((5,), "contig", "float32", 2, "pos")
    for mode in ("floor", "trunc"):
        assert_close(tinyfw.div(a.tf, b.tf, rounding_mode=mode),
                     torch.div(a.th, b.th, rounding_mode=mode), "float32")
    ai, bi = make_int((6,), "int64", 1), make_int((6,), "int64", 2)
    bi = type(bi)(bi.tf.abs() + 1, bi.th.abs() + 1, None, None)
    for mode in ("floor", "trunc"):
        out = tinyfw.div(ai.tf, bi.tf, rounding_mode=mode)
        assert out.dtype is tinyfw.int64
        np.testing.assert_array_equal(npy(out), torch.div(ai.th, bi.th, rounding_mode=mode).numpy())


@requires_torch
def test_nan_and_inf_propagation_vs_torch():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    y = np.array([1.0, np.nan, 2.0, -0.0, 0.0, np.inf], np.float32)
    tx, ty, px, py = tinyfw.tensor(x), tinyfw.tensor(y), torch.tensor(x), torch.tensor(y)
    for f in (lambda a, b: tinyfw.maximum(a, b), lambda a, b: tinyfw.minimum(a, b)):
        pass
    assert_close(tinyfw.maximum(tx, ty), torch.maximum(px, py))
    assert_close(tinyfw.minimum(tx, ty), torch.minimum(px, py))
    assert_close(tx.sigmoid(), px.sigmoid())
    assert_close(tx.relu(), px.relu())
    assert_close(tinyfw.isnan(tx), torch.isnan(px))
    assert_close(tinyfw.isinf(tx), torch.isinf(px))
    assert_close(tinyfw.isfinite(tx), torch.isfinite(px))
    big = np.array([-100.0, -30.0, 30.0, 100.0], np.float32)
    assert_close(tinyfw.tensor(big).sigmoid(), torch.tensor(big).sigmoid())
    assert_close(tinyfw.softplus(tinyfw.tensor(big)), F.softplus(torch.tensor(big)))


# -- gradcheck: every differentiable elementwise op, float64 ------------------------------
@pytest.mark.parametrize("name", sorted(n for n, v in UNARY.items() if v[3]))
def test_unary_gradcheck(name):
    fn, _, domain, _ = UNARY[name]
    x = make((2, 3), "T", "float64", 11, domain, requires_grad=True).tf_leaf
    if name in ("floor", "ceil", "round", "trunc", "sign"):
        x = tinyfw.tensor([[0.3, -1.7, 2.2], [-0.4, 1.1, 0.6]], dtype="float64", requires_grad=True)
    if name.startswith("clamp"):
        x = tinyfw.tensor([[0.0, -1.7, 0.3], [-0.4, 1.1, 0.6]], dtype="float64", requires_grad=True)
    assert tinyfw.gradcheck(fn, (x,))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name):
    fn, _, da, db = BINARY[name]
    a = make((2, 3), "contig", "float64", 3, da, requires_grad=True).tf_leaf
    b = make((3,), "contig", "float64", 4, db, requires_grad=True).tf_leaf
    assert tinyfw.gradcheck(fn, (a, b))


def test_where_gradcheck():
    cond = tinyfw.tensor([[True, False, True], [False, False, True]])
    a = tinyfw.randn(2, 3, dtype=tinyfw.float64, requires_grad=True)
    b = tinyfw.randn(3, dtype=tinyfw.float64, requires_grad=True)
    assert tinyfw.gradcheck(lambda a, b: tinyfw.where(cond, a, b), (a, b))


def test_gradcheck_catches_a_wrong_formula():
    """The check itself must be able to fail: a deliberately wrong backward is caught."""
    from tinyfw.autograd import Function, GradcheckError

    class BadSquare(Function):
        @staticmethod
        def forward(ctx, B, x):
            return B.mul(x, x)

        def backward(self, g):
            return g  # wrong: should be 2 x g

    x = tinyfw.randn(3, dtype=tinyfw.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        tinyfw.gradcheck(lambda t: BadSquare.apply(t), (x,))
