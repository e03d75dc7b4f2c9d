"""Every op runs on the meta device, forward and backward: the same call on meta tensors
and on CPU tensors gives outputs, and gradients, of equal shapes and dtypes.

The table covers every op family (elementwise, reductions, shapes, indexing, products, nn
ops, conversions, in-place writes); a recorder in the dispatcher notes which Function
classes the meta runs reached, and every Function in tinyfw.ops must be among them (or
named in NOT_ON_META with the reason).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
from tinyfw import dispatch
from tinyfw.autograd.function import Function
from tinyfw.ops import nn as opnn, nn_conv, nn_conv_more

import linalg_meta_cases
from tinyfw.ops import nn as opnn, nn_conv, resample
from tinyfw.ops import nn as opnn, nn_conv, nn_rms

F32, F64 = "float32", "float64"


class In:
    """An input spec: shape, dtype, whether it requires grad, and for integer inputs the
    exclusive upper bound of their values (so that CPU indices are valid)."""

    def __init__(self, shape, dtype=F32, grad=True, high=None, mask=False):
        self.shape, self.dtype, self.grad, self.high, self.mask = tuple(shape), dtype, grad, high, mask

    def make(self, device: str, rng) -> tinyfw.Tensor:
        if device == "meta":
            t = tinyfw.empty(self.shape, dtype=self.dtype, device="meta")
        elif self.mask:
            t = tinyfw.tensor(rng.random(self.shape) > 0.5)
        elif self.high is not None:
            t = tinyfw.tensor(rng.integers(0, self.high, self.shape), dtype=self.dtype)
        else:
            t = tinyfw.tensor(rng.uniform(0.5, 2.0, self.shape), dtype=self.dtype)
        return t.requires_grad_() if self.grad else t


def idx(shape, high):
    return In(shape, "int64", grad=False, high=high)


def mask(shape):
    return In(shape, "bool", grad=False, mask=True)


def _inplace(method, *args):
    def f(x, *rest):
        y = x * 1  # a non-leaf: in-place ops on it are recorded
        getattr(y, method)(*args, *rest)
        return y
    return f


def _setitem(index):
    def f(x, v, *ix):
        y = x * 1
        y[index(*ix) if callable(index) else index] = v
        return y
    return f


A23, A34 = In((2, 3)), In((3, 4))
CASES = {
    # elementwise: unary, activations, binary, comparisons, logic
    **{name: (getattr(tinyfw, name), [A23]) for name in (
        "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin",
        "cos", "tanh", "sigmoid", "erf", "erfc", "sign", "floor", "ceil", "round", "trunc", "square",
        "relu", "silu", "isnan", "isinf", "isfinite", "logical_not")},
    "clamp": (lambda x: x.clamp(0.7, 1.5), [A23]),
    "gelu": (lambda x: tinyfw.gelu(x), [A23]),
    "gelu_tanh": (lambda x: tinyfw.gelu(x, approximate="tanh"), [A23]),
    "leaky_relu": (lambda x: tinyfw.leaky_relu(x, 0.2), [A23]),
    "bias_act": (lambda x, b: tinyfw.ops.bias_act(x, b, "gelu", "tanh"), [A23, In((3,))]),
    "softplus": (lambda x: tinyfw.softplus(x), [A23]),
    **{name: (getattr(tinyfw, name), [In((2, 3)), In((3,))]) for name in (
        "add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "remainder", "eq",
        "ne", "lt", "le", "gt", "ge")},
    "floor_divide": (tinyfw.floor_divide, [In((2, 3), grad=False), In((3,), grad=False)]),
    "div_trunc": (lambda a, b: tinyfw.div(a, b, rounding_mode="trunc"), [A23, In((2, 1))]),
    "logical_and": (tinyfw.logical_and, [mask((2, 3)), mask((3,))]),
    "logical_or": (tinyfw.logical_or, [mask((2, 3)), mask((3,))]),
    "logical_xor": (tinyfw.logical_xor, [mask((2, 3)), mask((3,))]),
    "where": (tinyfw.where, [mask((2, 1)), A23, In((3,))]),
    "int_mul": (tinyfw.mul, [idx((2, 3), 5), idx((3,), 5)]),
    # reductions
    "sum": (lambda x: x.sum(1), [A34]), "sum_all": (lambda x: x.sum(), [A34]),
    "mean": (lambda x: x.mean(0, keepdim=True), [A34]), "prod": (lambda x: x.prod(1), [A34]),
    "amax": (lambda x: x.amax((0, 1)), [A34]), "amin": (lambda x: x.amin(1), [A34]),
    "max_dim": (lambda x: x.max(1), [A34]), "min_dim": (lambda x: x.min(0, keepdim=True), [A34]),
    "max_all": (lambda x: x.max(), [A34]), "argmax": (lambda x: x.argmax(1), [A34]),
    "argmin": (lambda x: x.argmin(), [A34]), "any": (lambda x: x.any(1), [mask((3, 4))]),
    "all": (lambda x: x.all(), [mask((3, 4))]), "var": (lambda x: x.var(1), [A34]),
    "std": (lambda x: x.std(0), [A34]), "logsumexp": (lambda x: x.logsumexp(1), [A34]),
    "norm1": (lambda x: x.norm(1), [A34]), "norm2": (lambda x: x.norm(dim=1), [A34]),
    "norm_inf": (lambda x: x.norm(math.inf), [A34]), "norm3": (lambda x: x.norm(3, 0), [A34]),
    "cumsum": (lambda x: x.cumsum(1), [A34]), "int_sum": (lambda x: x.sum(0), [idx((3, 4), 9)]),
    "count_nonzero": (lambda x: tinyfw.count_nonzero(x, 1), [A34]),
    # views and shapes
    "view": (lambda x: x.view(4, 3), [A34]), "reshape_copy": (lambda x: x.T.reshape(12), [A34]),
    "flatten": (lambda x: x.flatten(), [In((2, 3, 4))]),
    "unflatten": (lambda x: x.unflatten(1, (2, 2)), [A34]),
    "permute": (lambda x: x.permute(2, 0, 1), [In((2, 3, 4))]),
    "transpose": (lambda x: x.transpose(0, 1), [A34]), "t": (lambda x: x.t(), [A34]),
    "movedim": (lambda x: x.movedim(0, 2), [In((2, 3, 4))]),
    "expand": (lambda x: x.expand(2, 3, 4), [In((3, 1))]),
    "broadcast_to": (lambda x: tinyfw.broadcast_to(x, (5, 4)), [In((4,))]),
    "squeeze": (lambda x: x.squeeze(1), [In((3, 1, 4))]),
    "unsqueeze": (lambda x: x.unsqueeze(-1), [A34]),
    "slice": (lambda x: x[1:, ::2, None, 0], [In((3, 4, 2))]),
    "narrow": (lambda x: x.narrow(1, 1, 2), [A34]), "select": (lambda x: x.select(0, 1), [A34]),
    "split": (lambda x: x.split([1, 3], 1), [A34]), "chunk": (lambda x: x.chunk(2, 1), [A34]),
    "unbind": (lambda x: x.unbind(0), [A34]), "contiguous": (lambda x: x.T.contiguous(), [A34]),
    # copies and indexing
    "cat": (lambda a, b: tinyfw.cat([a, b], 1), [A23, In((2, 2))]),
    "stack": (lambda a, b: tinyfw.stack([a, b], 0), [A23, A23]),
    "hstack": (lambda a, b: tinyfw.hstack([a, b]), [A23, A23]),
    "vstack": (lambda a, b: tinyfw.vstack([a, b]), [In((3,)), A23]),
    "pad": (lambda x: tinyfw.pad(x, (1, 2, 0, 1), value=0.5), [A23]),
    "flip": (lambda x: x.flip(0, 1), [A23]), "repeat": (lambda x: x.repeat(2, 1, 3), [A23]),
    "gather": (lambda x, i: x.gather(1, i), [A34, idx((3, 2), 4)]),
    "scatter_add": (lambda x, i, s: x.scatter_add(0, i, s), [A34, idx((2, 4), 3), In((2, 4))]),
    "scatter": (lambda x, i, s: x.scatter(1, i, s), [A34, idx((3, 1), 4), In((3, 1))]),
    "index_tensor": (lambda x, i: x[i], [A34, idx((2, 5), 3)]),
    "index_mixed": (lambda x, i, j: x[i, 1:, j], [In((3, 4, 5)), idx((2,), 3), idx((2,), 5)]),
    "index_list": (lambda x: x[[0, 2], None], [A34]),
    "index_put": (lambda x, v, i: x.index_put((i,), v), [A34, In((4,)), idx((2,), 3)]),
    "index_put_acc": (lambda x, v, i: x.index_put((slice(None), i), v, accumulate=True),
                      [A34, In((3, 2)), idx((2,), 4)]),
    "index_select": (lambda x, i: x.index_select(1, i), [A34, idx((5,), 4)]),
    "masked_fill": (lambda x, m: x.masked_fill(m, 0.25), [A34, mask((4,))]),
    "triu": (lambda x: x.triu(1), [A34]), "tril": (lambda x: x.tril(-1), [In((2, 3, 4))]),
    "sort": (lambda x: x.sort(1, descending=True), [A34]),
    "topk": (lambda x: x.topk(2), [A34]), "argsort": (lambda x: x.argsort(0), [A34]),
    # issue 16: scans, order statistics, stats (compositions run their ops on meta too)
    "cumprod": (lambda x: x.cumprod(1), [A34]), "cummax": (lambda x: x.cummax(0), [A34]),
    "cummin": (lambda x: x.cummin(-1), [A34]),
    "logcumsumexp": (lambda x: x.logcumsumexp(1), [A34]),
    "median": (lambda x: x.median(1), [A34]), "kthvalue": (lambda x: x.kthvalue(2, 0), [A34]),
    "quantile": (lambda x: x.quantile(0.3, 1, interpolation="midpoint"), [A34]),
    "nansum": (lambda x: x.nansum(0), [A34]), "diff": (lambda x: x.diff(dim=0), [A34]),
    "trace": (lambda x: x.trace(), [A34]), "cov": (lambda x: x.cov(), [A34]),
    # products
    "matmul": (tinyfw.matmul, [In((2, 3, 4)), In((4, 5))]),
    "matvec": (tinyfw.matmul, [A34, In((4,))]), "vecmat": (tinyfw.matmul, [In((3,)), A34]),
    "mm": (tinyfw.mm, [A23, A34]), "bmm": (tinyfw.bmm, [In((2, 2, 3)), In((2, 3, 4))]),
    "dot": (tinyfw.dot, [In((4,)), In((4,))]), "outer": (tinyfw.outer, [In((3,)), In((4,))]),
    "linear": (tinyfw.linear, [In((5, 4)), A34, In((3,))]),
    # nn ops
    "softmax": (lambda x: tinyfw.nn.functional.softmax(x, 1), [A34]),
    "log_softmax": (lambda x: tinyfw.nn.functional.log_softmax(x, 0), [A34]),
    "cross_entropy": (lambda z, t: opnn.cross_entropy_rows(z, t, None, -100, 0.0), [In((4, 5)), idx((4,), 5)]),
    "cross_entropy_mean": (lambda z, t, w: opnn.cross_entropy_rows(z, t, w, 2, 0.1, "mean"),
                           [In((4, 5)), idx((4,), 5), In((5,), grad=False)]),
    "cross_entropy_sum": (lambda z, t: opnn.cross_entropy_rows(z, t, None, -100, 0.0, "sum"),
                          [In((4, 5), F64), idx((4,), 5)]),
    "layer_norm": (lambda x, w, b: opnn.norm_rows(x, w, b, 1e-5, "layer"), [A34, In((4,)), In((4,))]),
    "batch_norm": (lambda x, w: opnn.norm_rows(x, w, None, 1e-5, "batch"), [In((2, 3, 4)), In((3,))]),
    "rms_norm": (lambda x, w: nn_rms.rms_norm_rows(x, w, 1e-5), [A34, In((4,))]),
    "gelu_add_layer_norm": (lambda h, b, x, w, beta: tinyfw.ops.gelu_add_layer_norm(h, b, x, w, beta),
                            [A34, In((4,)), A34, In((4,)), In((4,))]),
    "dropout": (lambda x: opnn.dropout_kernel(x, 0.3, tinyfw.Generator(1)), [A34]),
    "sdpa": (lambda q, k, v: tinyfw.nn.functional.scaled_dot_product_attention(q, k, v),
             [In((2, 3, 4)), In((2, 5, 4)), In((2, 5, 6))]),
    "sdpa_mask": (lambda q, k, v, m: tinyfw.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=m), [In((3, 4)), In((5, 4)), In((5, 2)), In((3, 5))]),
    "conv2d": (lambda x, w: nn_conv.conv2d_nobias(x, w, (1, 2), (1, 0), (1, 1), 1),
               [In((2, 2, 5, 6)), In((3, 2, 3, 2))]),
    "conv3d": (lambda x, w: nn_conv_more.conv3d_nobias(x, w, (1, 2, 1), (1, 0, 1), (1, 1, 2), 2),
               [In((2, 4, 3, 5, 4)), In((4, 2, 2, 3, 2))]),
    "max_pool2d": (lambda x: nn_conv.max_pool2d_indices(x, (2, 2), (2, 1), (1, 0), (1, 1), True),
                   [In((1, 2, 5, 6))]),
    "avg_pool2d": (lambda x: nn_conv.avg_pool2d_raw(x, (2, 3), (2, 2), (1, 1), False, True, None),
                   [In((1, 2, 5, 6))]),
    "resample_axis": (lambda x: resample.resample_dim(x, 2, np.array([[0, 1], [2, -1]]),
                                                       np.array([[0.25, 0.75], [1.0, 0.0]])),
                      [In((1, 2, 3, 4))]),
    # conversions
    "to_f64": (lambda x: x.double(), [A23]), "to_half": (lambda x: x.half(), [A23]),
    "to_bf16": (lambda x: x.bfloat16(), [A23]), "to_int": (lambda x: x.long(), [A23]),
    "clone": (lambda x: x.clone(), [A23]),
    # a CPU tensor moved to the op's device (a copy onto meta in the meta run)
    "to_device": (lambda x: x + tinyfw.arange(3.0, device="cpu").to(x.device), [A23]),
    # in-place writes (on a non-leaf, recorded)
    "add_": (_inplace("add_"), [A23, In((3,))]), "mul_": (_inplace("mul_", 2.0), [A23]),
    "clamp_": (_inplace("clamp_", 0.5, 1.5), [A23]), "zero_": (_inplace("zero_"), [A23]),
    "fill_": (_inplace("fill_", 3.0), [A23]), "copy_": (_inplace("copy_"), [A23, In((3,))]),
    "masked_fill_": (_inplace("masked_fill_"), [A23, mask((2, 3)), In((), grad=False)]),
    "index_put_": (lambda x, v, i: (x * 1).index_put_((i,), v), [A23, In((3,)), idx((1,), 2)]),
    "setitem_slice": (_setitem((0, slice(1, None))), [A23, In((2,))]),
    "setitem_index": (_setitem(lambda i: (i,)), [A23, In((3,)), idx((2,), 2)]),
}

# issue 16, elementwise math
CASES.update(__import__("elementwise_math_cases").meta_cases(In))
CASES.update(linalg_meta_cases.cases(In))  # tinyfw.linalg's Functions
# issue 16, integers and counting (bincount's length depends on values: refused on meta,
# see test_api_int_predicates.py, and exempt below)
CASES.update({
    "bitwise_and": (lambda a, b: a & b, [idx((2, 3), 5), idx((3,), 5)]),
    "bitwise_or": (lambda a, b: (a | b, a[:1] | b), [idx((2, 3), 5), idx((3,), 5)]),
    "bool_masks": (lambda a, b: (a & b, a | b, a ^ b, ~a), [mask((2, 3)), mask((3,))]),
    "bitwise_xor": (tinyfw.bitwise_xor, [idx((2, 3), 5), idx((2, 1), 5)]),
    "bitwise_not": (lambda a: ~a, [idx((2, 3), 5)]),
    "shifts": (lambda a, b: (a << b, a >> b), [idx((2, 3), 5), idx((3,), 5)]),
    "gcd_lcm": (lambda a, b: (tinyfw.gcd(a, b), tinyfw.lcm(a, b)), [idx((2, 3), 9), idx((3,), 9)]),
    "hash_tensor": (lambda x: x.hash_tensor(1), [A34]),
    "histc": (lambda x: x.histc(5, 0.0, 2.0), [In((7,), grad=False)]),
    "histogram": (lambda x: tuple(x.histogram(4, range=(0.0, 2.0))), [In((7,), grad=False)]),
    "nan_to_num": (lambda x: x.nan_to_num(posinf=1.0), [A34]),
})

# ops whose output shape depends on values, which meta tensors do not have (PyTorch's meta
# tensors refuse them too): masked_select / a bool mask index
# issue 16, indexing family: scatter reductions, index reductions, *_scatter, strided views
CASES.update({
    "scatter_reduce_amax": (lambda x, i, s: x.scatter_reduce(1, i, s, "amax", include_self=False),
                            [A34, idx((3, 2), 4), In((3, 2))]),
    "index_reduce_prod": (lambda x, i, s: x.index_reduce(0, i, s, "prod"),
                          [A34, idx((5,), 3), In((5, 4))]),
    "index_add": (lambda x, i, s: x.index_add(1, i, s, alpha=2), [A34, idx((2,), 4), In((3, 2))]),
    "select_scatter": (lambda x, s: x.select_scatter(s, 0, 1), [A34, In((4,))]),
    "diagonal_scatter": (lambda x, s: x.diagonal_scatter(s, 1), [A34, In((3,))]),
    "diagonal": (lambda x: x.diagonal(-1, 1, 0), [In((3, 4, 2))]),
    "as_strided": (lambda x: x.as_strided((2, 2), (1, 3), 1), [A34]),
    "index_int_collapse": (lambda x: x[0, :, [1, 2]], [In((2, 3, 4))]),
    "setitem_int_collapse": (lambda x, v: _setitem_int(x, v), [In((2, 3, 4)), In((3, 2))]),
})


def _setitem_int(x, v):
    y = x * 1
    y[0, :, [1, 2]] = v
    return y


NOT_ON_META = {"bool_mask": (lambda x, m: x[m], [A34, mask((3, 4))])}


class _Recorder:
    """An interceptor that notes which ops ran."""

    def __init__(self):
        self.seen = set()

    def intercept(self, fn, inputs, attrs, run):
        self.seen.add(fn)
        return run(inputs)


_RECORDER = _Recorder()


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _run(case, device):
    fn, specs = case
    rng = np.random.default_rng(0)
    ins = [s.make(device, rng) for s in specs]
    outs = _outputs(fn(*ins))
    wrt = [t for t in ins if t.requires_grad]
    diff = [o for o in outs if o.requires_grad]
    grads = []
    if diff:
        gs = tinyfw.autograd.grad(diff, wrt, [tinyfw.ones_like(o) for o in diff],
                                  allow_unused=True)
        grads = [None if g is None else (g.shape, g.dtype, g.device.type) for g in gs]
    return [(o.shape, o.dtype, o.device.type) for o in outs], grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_on_meta_matches_cpu_shapes_and_dtypes(name):
    dispatch.push_interceptor(_RECORDER)
    try:
        meta_outs, meta_grads = _run(CASES[name], "meta")
    finally:
        dispatch.pop_interceptor(_RECORDER)
    cpu_outs, cpu_grads = _run(CASES[name], "cpu")
    assert [(s, d) for s, d, _ in meta_outs] == [(s, d) for s, d, _ in cpu_outs]
    assert all(dev == "meta" for _, _, dev in meta_outs)
    assert [g and g[:2] for g in meta_grads] == [g and g[:2] for g in cpu_grads]
    assert all(g is None or g[2] == "meta" for g in meta_grads)


def test_value_dependent_shapes_are_refused_on_meta():
    fn, specs = NOT_ON_META["bool_mask"]
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="meta: indexing with a boolean mask"):
        fn(*[s.make("meta", rng) for s in specs])
    with pytest.raises(RuntimeError, match="meta: indexing with a boolean mask"):
        tinyfw.empty(3, device="meta").masked_select(tinyfw.empty(3, dtype="bool", device="meta"))


def _functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _functions(sub)


def test_every_op_is_in_the_table():
    """Run after the table (pytest keeps file order): every Function of tinyfw.ops ran on
    meta, forward or backward."""
    if not _RECORDER.seen:
        pytest.skip("run with the table (the recorder is filled by the meta runs)")
    ops = {f for f in _functions() if f.__module__.startswith("tinyfw.ops")}
    # DrawSeed runs on the CPU by design: it draws a host seed for dropout
    # Bincount's output length is read from the values, which meta tensors do not have
    from tinyfw.ops.histogram import Bincount

    missing = sorted(f.__name__ for f in ops - _RECORDER.seen - {opnn.DrawSeed, Bincount})
    assert not missing, f"ops never run on meta by this table: {missing}"
