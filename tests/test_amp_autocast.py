"""tinyfw.autocast: the output dtype of each op class under autocast against
torch.autocast("cpu"), nesting, the decorator, enabled=False, thread-locality, the weight
cache, gradients reaching float32 leaves, the meta and check devices."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tests.helpers import requires_torch, to_numpy, torch

BF16, F16, F32, F64 = tinyfw.bfloat16, tinyfw.float16, tinyfw.float32, tinyfw.float64
I64 = tinyfw.int64
_TORCH = {BF16: "bfloat16", F16: "float16", F32: "float32", F64: "float64", I64: "int64"}

# name -> (fn(lib, F, *inputs), input specs (dtype, shape) or ("target", n, classes) --
#          bfloat16 stands for the region's low dtype --
#          where tinyfw's policy differs from torch's CPU list: the reason, else None).
# tinyfw's float32 list is PyTorch's CUDA one (the policy: softmax, norms,
# exp/log/pow and sums in float32 on every device); torch's CPU list keeps them in the
# input's dtype.  Those rows check that torch still does what the reason says.
_CUDA_LIST = "torch's CPU list keeps the input dtype; tinyfw uses torch's CUDA float32 list"
CASES = {
    "mm": (lambda L, F, a, b: a @ b, [(F32, (4, 8)), (F32, (8, 3))], None),
    "matmul_mixed": (lambda L, F, a, b: L.matmul(a, b), [(BF16, (4, 8)), (F32, (8, 3))], None),
    "bmm": (lambda L, F, a, b: L.bmm(a, b), [(F32, (2, 4, 8)), (F32, (2, 8, 3))], None),
    "matmul_f64": (lambda L, F, a, b: a @ b, [(F64, (4, 8)), (F64, (8, 3))], None),
    "linear": (lambda L, F, x, w, b: F.linear(x, w, b), [(F32, (4, 8)), (F32, (5, 8)),
                                                         (F32, (5,))], None),
    "linear_nobias": (lambda L, F, x, w: F.linear(x, w), [(F32, (4, 8)), (F32, (5, 8))], None),
    "conv2d": (lambda L, F, x, w, b: F.conv2d(x, w, b, padding=1),
               [(F32, (2, 3, 6, 6)), (F32, (4, 3, 3, 3)), (F32, (4,))], None),
    "conv2d_bf16_input": (lambda L, F, x, w: F.conv2d(x, w),
                          [(BF16, (2, 3, 6, 6)), (F32, (4, 3, 3, 3))], None),
    "softmax_f32": (lambda L, F, x: F.softmax(x, -1), [(F32, (4, 8))], None),
    "softmax_bf16": (lambda L, F, x: F.softmax(x, -1), [(BF16, (4, 8))], _CUDA_LIST),
    "log_softmax_bf16": (lambda L, F, x: F.log_softmax(x, -1), [(BF16, (4, 8))], _CUDA_LIST),
    "layer_norm_bf16": (lambda L, F, x, w, b: F.layer_norm(x, (8,), w, b),
                        [(BF16, (4, 8)), (F32, (8,)), (F32, (8,))], _CUDA_LIST),
    "batch_norm_bf16": (lambda L, F, x, w, b: F.batch_norm(x, None, None, w, b, True),
                        [(BF16, (4, 3, 5)), (F32, (3,)), (F32, (3,))], _CUDA_LIST),
    "exp_bf16": (lambda L, F, x: x.exp(), [(BF16, (4, 8))], _CUDA_LIST),
    "log_bf16": (lambda L, F, x: x.abs().log(), [(BF16, (4, 8))], _CUDA_LIST),
    "pow_bf16": (lambda L, F, x: x ** 2, [(BF16, (4, 8))], _CUDA_LIST),
    "sum_bf16": (lambda L, F, x: x.sum(), [(BF16, (4, 8))], _CUDA_LIST),
    "mean_bf16": (lambda L, F, x: x.mean(), [(BF16, (4, 8))], _CUDA_LIST),
    "cumsum_bf16": (lambda L, F, x: x.cumsum(0), [(BF16, (4, 8))], _CUDA_LIST),
    "prod_bf16": (lambda L, F, x: x.prod(), [(BF16, (4, 8))], None),
    "cross_entropy": (lambda L, F, x, t: F.cross_entropy(x, t), [(BF16, (4, 8)), ("target", 4, 8)],
                      None),
    "cross_entropy_f32_logits": (lambda L, F, x, w, t: F.cross_entropy(x @ w, t),
                                 [(F32, (4, 6)), (F32, (6, 8)), ("target", 4, 8)], None),
    "nll_loss": (lambda L, F, x, t: F.nll_loss(x, t), [(BF16, (4, 8)), ("target", 4, 8)], None),
    "mse_loss": (lambda L, F, x, y: F.mse_loss(x, y), [(BF16, (4, 8)), (BF16, (4, 8))], None),
    "l1_loss": (lambda L, F, x, y: F.l1_loss(x, y), [(BF16, (4, 8)), (BF16, (4, 8))], None),
    "bce_logits": (lambda L, F, x, y: F.binary_cross_entropy_with_logits(x, y),
                   [(BF16, (4, 8)), (BF16, (4, 8))], None),
    "add_mixed": (lambda L, F, a, b: a + b, [(BF16, (4, 8)), (F32, (4, 8))], None),
    "mul_mixed": (lambda L, F, a, b: a * b, [(BF16, (4, 8)), (F32, (4, 8))], None),
    "add_bf16": (lambda L, F, a, b: a + b, [(BF16, (4, 8)), (BF16, (4, 8))], None),
    "where_mixed": (lambda L, F, a, b: L.where(b > 0, a, b), [(BF16, (4, 8)), (F32, (4, 8))], None),
    "cat_mixed": (lambda L, F, a, b: L.cat([a, b]), [(BF16, (4, 8)), (F32, (4, 8))], None),
    "relu_bf16": (lambda L, F, x: F.relu(x), [(BF16, (4, 8))], None),
    "gelu_bf16": (lambda L, F, x: F.gelu(x), [(BF16, (4, 8))], None),
    "tanh_bf16": (lambda L, F, x: x.tanh(), [(BF16, (4, 8))], None),
    "max_pool_bf16": (lambda L, F, x: F.max_pool2d(x, 2), [(BF16, (1, 2, 4, 4))], None),
    "avg_pool_f32": (lambda L, F, x: F.avg_pool2d(x, 2), [(F32, (1, 2, 4, 4))], None),
    "argmax": (lambda L, F, x: x.argmax(-1), [(F32, (4, 8))], None),
    "transpose_view": (lambda L, F, x: x.mT, [(F32, (4, 8))], None),
}


def _inputs(specs, low, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        if s[0] == "target":
            out.append(rng.integers(0, s[2], s[1]))
        else:
            dtype = low if s[0] is BF16 else s[0]
            out.append((dtype, (rng.standard_normal(s[1]) * 0.5).astype(np.float32)))
    return out


def _tinyfw_args(raw):
    return [tinyfw.tensor(r) if isinstance(r, np.ndarray) else tinyfw.tensor(r[1]).to(r[0])
            for r in raw]


def _torch_args(raw):
    return [torch.from_numpy(r) if isinstance(r, np.ndarray)
            else torch.from_numpy(r[1]).to(getattr(torch, _TORCH[r[0]])) for r in raw]


@requires_torch
@pytest.mark.parametrize("low", [BF16, F16], ids=["bf16", "f16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_output_dtype_matches_torch_autocast(name, low):
    fn, specs, differs = CASES[name]
    raw = _inputs(specs, low)
    with tinyfw.autocast("cpu", dtype=low):
        got = fn(tinyfw, F, *_tinyfw_args(raw))
    with torch.autocast("cpu", dtype=getattr(torch, _TORCH[low])):
        want = fn(torch, torch.nn.functional, *_torch_args(raw))
    want_name = str(want.dtype).removeprefix("torch.")
    if differs is None:
        assert _TORCH[got.dtype] == want_name, f"{name}: tinyfw {got.dtype.name}, torch {want_name}"
    else:
        # the documented difference, and torch still behaves as the reason says
        low_inputs = {_TORCH[r[0]] for r in raw if not isinstance(r, np.ndarray)}
        assert want_name in low_inputs, f"{name}: torch now gives {want_name}: {differs}"
        assert got.dtype is F32, f"{name}: tinyfw gives {got.dtype.name}, its policy float32"
    # the values: the same op outside autocast on inputs cast as the policy says is
    # computed in the same precision; here it is enough that both agree loosely
    if got.dtype.is_floating_point and got.numel():
        np.testing.assert_allclose(to_numpy(got), to_numpy(want).astype(np.float64),
                                   rtol=0.05, atol=0.05)


def test_outside_a_region_nothing_is_cast():
    a, b = tinyfw.randn(3, 4), tinyfw.randn(4, 2)
    assert (a @ b).dtype is F32
    assert not tinyfw.is_autocast_enabled("cpu")
    assert tinyfw.get_autocast_dtype("cpu") is BF16 and tinyfw.get_autocast_dtype("cuda") is F16


def test_nesting_and_disabled_regions():
    a, b = tinyfw.randn(3, 4), tinyfw.randn(4, 2)
    with tinyfw.autocast("cpu"):
        assert tinyfw.is_autocast_enabled("cpu") and not tinyfw.is_autocast_enabled("cuda")
        assert (a @ b).dtype is BF16
        with tinyfw.autocast("cpu", enabled=False):
            assert not tinyfw.is_autocast_enabled("cpu")
            assert (a @ b).dtype is F32
            with tinyfw.amp.autocast("cpu", dtype=F16):
                assert tinyfw.get_autocast_dtype("cpu") is F16
                assert (a @ b).dtype is F16
            assert (a @ b).dtype is F32
        assert (a @ b).dtype is BF16
    assert (a @ b).dtype is F32
    assert tinyfw.dispatch.interceptors() == ()


def test_a_region_for_another_device_type_leaves_cpu_ops_alone():
    a, b = tinyfw.randn(3, 4), tinyfw.randn(4, 2)
    with tinyfw.autocast("cuda"):
        assert (a @ b).dtype is F32


def test_decorator_and_reentry():
    ac = tinyfw.autocast("cpu", dtype=F16)

    @ac
    def f(a, b):
        return a @ b

    a, b = tinyfw.randn(3, 4), tinyfw.randn(4, 2)
    assert f(a, b).dtype is F16
    assert (a @ b).dtype is F32
    with ac:  # the same object entered twice, nested
        with ac:
            assert (a @ b).dtype is F16
        assert (a @ b).dtype is F16
    assert (a @ b).dtype is F32


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unsupported device_type 'tpu'"):
        tinyfw.autocast("tpu")
    with pytest.raises(ValueError, match="bfloat16 or tinyfw.float16, got float64"):
        tinyfw.autocast("cpu", dtype=F64)


def test_the_mode_is_thread_local():
    a, b = tinyfw.randn(3, 4), tinyfw.randn(4, 2)
    seen = {}

    def other():
        seen["dtype"] = (a @ b).dtype
        seen["enabled"] = tinyfw.is_autocast_enabled()

    with tinyfw.autocast("cpu"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert (a @ b).dtype is BF16
    assert seen == {"dtype": F32, "enabled": False}


def _count_casts(fn):
    """fn() and the number of Cast ops it dispatched (an interceptor counts them)."""
    from tinyfw.dispatch import pop_interceptor, push_interceptor
    from tinyfw.ops.convert import Cast

    class Counter:
        n = 0

        def intercept(self, op, inputs, attrs, run):
            if op is Cast:
                Counter.n += 1
            return run(inputs)

    c = Counter()
    push_interceptor(c)
    try:
        out = fn()
    finally:
        pop_interceptor(c)
    return out, Counter.n


def test_weight_cache_casts_a_parameter_once_per_region():
    lin = tinyfw.nn.Linear(8, 8)
    x = tinyfw.randn(4, 8)

    def three_uses():
        with tinyfw.autocast("cpu"):
            return lin(lin(lin(x)))

    # x once; weight and bias once each; the activations are bf16 already
    y, n = _count_casts(three_uses)
    assert y.dtype is BF16 and n == 3
    with tinyfw.autocast("cpu", cache_enabled=False):
        _, n = _count_casts(lambda: lin(lin(lin(x))))
    assert n == 1 + 3 * 2
    # the cache ends with the outermost region: a new region casts again
    _, n = _count_casts(three_uses)
    assert n == 3


def test_weight_cache_sees_in_place_updates_and_grad_mode():
    w = tinyfw.randn(4, 4, requires_grad=True)
    x = tinyfw.randn(2, 4)
    with tinyfw.autocast("cpu"):
        with tinyfw.no_grad():
            y0 = x @ w
        y1 = x @ w
        assert y0.grad_fn is None and y1.requires_grad  # not the no_grad cast
        with tinyfw.no_grad():
            w.mul_(2.0)
        y2 = x @ w
    np.testing.assert_allclose(to_numpy(y2), 2 * to_numpy(y1), rtol=1e-2, atol=1e-2)


def test_gradients_reach_float32_leaves_in_float32():
    torch_ = pytest.importorskip("torch", reason="PyTorch is not installed")
    rng = np.random.default_rng(3)
    xs, ws, bs = (rng.standard_normal(s).astype(np.float32) for s in ((4, 8), (5, 8), (5,)))
    x, w, b = (tinyfw.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    with tinyfw.autocast("cpu"):
        loss = F.cross_entropy(F.linear(x, w, b), tinyfw.tensor([0, 1, 2, 3]))
    loss.backward()
    tx, tw, tb = (torch_.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    with torch_.autocast("cpu", dtype=torch_.bfloat16):
        tl = torch_.nn.functional.cross_entropy(torch_.nn.functional.linear(tx, tw, tb),
                                                torch_.tensor([0, 1, 2, 3]))
    tl.backward()
    for mine, theirs in ((x, tx), (w, tw), (b, tb)):
        assert mine.grad.dtype is F32
        # both round the same bf16 products; the float32 parts may differ in order
        np.testing.assert_allclose(to_numpy(mine.grad), theirs.grad.numpy(), rtol=0.02,
                                   atol=0.01)


def test_backward_inside_a_region_keeps_the_forward_dtypes():
    w = tinyfw.randn(4, 4, requires_grad=True)
    x = tinyfw.randn(2, 4, requires_grad=True)
    with tinyfw.autocast("cpu"):
        (x @ w).exp().sum().backward()
    assert w.grad.dtype is F32 and x.grad.dtype is F32


@pytest.mark.parametrize("device", ["meta", "check"])
def test_meta_and_check_devices_follow_the_cpu_region(device):
    a = tinyfw.randn(3, 4, device=device)
    w = tinyfw.randn(5, 4, device=device, requires_grad=True)
    with tinyfw.autocast("cpu"):
        y = F.linear(a, w)
        s = F.softmax(y, -1)
    assert y.dtype is BF16 and y.device.type == device
    assert s.dtype is F32
