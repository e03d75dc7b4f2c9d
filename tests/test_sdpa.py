"""scaled_dot_product_attention: the fused kernel against the reference, the reference
against float64 and PyTorch, gradients by finite differences, masks (bool, float,
causal, fully masked rows), argument errors, ONNX, jit and MultiheadAttention on it."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from tinyfw.backend import cpu, ref
from tests.helpers import npy, requires_torch, torch

HALF = [np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)]
EPS32 = 2.0 ** -24  # float32's unit roundoff
needs_kernel = pytest.mark.skipif("sdpa_forward" not in cpu.KERNELS,
                                  reason="tinyfw._C is not built with the attention kernel")


def _operands(rng, b, h, L, S, E, ev, kind, dtype=np.float32, strided=False):
    """q, k, v (B, H, *, *) and a mask of `kind` broadcast to (B, H, L, S) as the op layer
    passes it; strided: q and v are transposed views, k a slice with a step."""
    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)
    if strided:
        q = arr(b, L, h, E).transpose(0, 2, 1, 3)
        k = arr(b, h, 2 * S, E)[:, :, ::2]
        v = arr(b, h, ev, S).transpose(0, 1, 3, 2)
    else:
        q, k, v = arr(b, h, L, E), arr(b, h, S, E), arr(b, h, S, ev)
    mask = None
    if kind == "bool":
        keep = rng.random((L, S)) < 0.6
        keep[L // 2:L // 2 + 1] = False  # a fully masked row
        mask = np.broadcast_to(keep, (b, h, L, S))
    elif kind == "float":
        mask = np.broadcast_to(arr(b, 1, L, S), (b, h, L, S))
    elif kind == "pad":  # key padding: a dead suffix per batch (the kernel trims it)
        keep = np.arange(S) < rng.integers(0, S + 1, (b, 1, 1, 1))
        mask = np.broadcast_to(keep, (b, h, L, S))
    elif kind == "band":  # query rows 24 .. 71 see key 0 only: whole query blocks dead in between
        keep = np.ones((L, S), bool)
        keep[24:72, 1:] = False
        mask = np.broadcast_to(keep, (b, h, L, S))
    elif kind == "tri":  # a causal float mask (the kernel trims the dead keys per panel)
        mask = np.broadcast_to(np.where(np.tri(L, S, dtype=bool), 0, -np.inf).astype(dtype), (b, h, L, S))
    return q, k, v, mask


def _f64(*xs):
    return [None if x is None else x.astype(np.float64) for x in xs]


def _bound(want64: np.ndarray, terms: int) -> float:
    """Float32 error bound against the float64 result: `terms` roundings of the largest
    magnitude involved (sums of products, the exp's 1 ulp), with the float32 rounding of the
    inputs' products counted by the caller in `terms`."""
    return terms * EPS32 * max(1.0, float(np.abs(want64).max(initial=0.0)))


# feature sizes that fill whole micro-kernel panels (16, 32, 64) too: the backward then reads
# g, q and k's rows in place instead of packing them
shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(0, 40), st.integers(0, 300),
                   st.one_of(st.integers(0, 20), st.sampled_from([16, 32, 64])),
                   st.one_of(st.integers(0, 36), st.sampled_from([16, 32, 64])))


@needs_kernel
@given(dims=shapes, kind=st.sampled_from(["none", "bool", "float", "causal", "pad", "tri"]),
       scale=st.sampled_from([0.05, 0.3, 1.0]), strided=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_kernel_float32_within_rounding_of_float64(dims, kind, scale, strided, seed):
    """The fused float32 kernel against the reference in float64 on the same values: the
    scores carry E products, the softmax sums S terms, the outputs S more."""
    _check_float32_kernel(dims, kind, scale, strided, seed)


@needs_kernel
@pytest.mark.parametrize("dims", [(2, 2, 30, 70, 64, 64), (1, 3, 40, 33, 32, 64), (2, 1, 25, 260, 64, 32)])
@pytest.mark.parametrize("kind", ["none", "causal", "tri", "float"])
def test_kernel_float32_with_whole_feature_panels(dims, kind):
    """E and Ev multiples of every level's panel width: the backward reads g, q and k in
    place, the last query block (L not a multiple of its 24 or 12 rows) short."""
    _check_float32_kernel(dims, kind, 0.3, False, 7)


@needs_kernel
@pytest.mark.parametrize("L", [100, 300])
@pytest.mark.parametrize("kind", ["band", "causal", "tri", "bool"])
def test_kernel_float32_over_several_query_chunks(L, kind):
    """The backward keeps P and dS for a chunk of up to ~256 query rows and runs dV and dK
    over the rows where the keys are live: L = 300 takes two chunks, and the band mask
    leaves whole query blocks dead between live ones (they must count as zeros)."""
    _check_float32_kernel((1, 2, L, 70, 16, 16), kind, 0.3, False, 11)
    _check_float32_kernel((1, 1, L, 40, 64, 32), kind, 0.3, False, 12)


def _check_float32_kernel(dims, kind, scale, strided, seed):
    b, h, L, S, E, ev = dims
    rng = np.random.default_rng(seed)
    q, k, v, mask = _operands(rng, b, h, L, S, E, ev, kind, strided=strided)
    causal = kind == "causal"
    out, lse = cpu.sdpa_forward(q, k, v, mask, scale, causal)
    boolean = mask is not None and mask.dtype == bool
    q8, k8, v8, m8 = _f64(q, k, v, None if boolean else mask)
    m8 = mask if boolean else m8
    out8, lse8 = ref.sdpa_forward(q8, k8, v8, m8, scale, causal)
    assert out.dtype == np.float32 and lse.dtype == np.float32
    # a score's error (E products, in units of |q||k| scale) moves every probability by as much
    s_err = (E + 2) * scale * float(np.abs(q).max(initial=1) * np.abs(k).max(initial=1))
    terms = 4 * (S + ev + 8) + int(64 * s_err)
    np.testing.assert_allclose(out, out8, rtol=0, atol=_bound(out8, terms) * max(1.0, np.abs(v).max(initial=1)))
    dead = np.isneginf(lse8)
    assert np.array_equal(np.isneginf(lse), dead), "fully masked rows differ"
    np.testing.assert_allclose(lse[~dead], lse8[~dead], rtol=0, atol=_bound(lse8[~dead], terms))
    assert not np.any(out[np.broadcast_to(dead[..., None], out.shape)]), "a fully masked row is not 0"
    g = rng.standard_normal(out.shape).astype(np.float32)
    got = cpu.sdpa_backward(g, q, k, v, out, lse, mask, scale, causal)
    want = ref.sdpa_backward(g.astype(np.float64), q8, k8, v8, out8, lse8, m8, scale, causal)
    for name, a, w in zip("qkv", got, want):
        assert a.shape == w.shape and a.dtype == np.float32, name
        mag = float(np.abs(g).max(initial=1) * max(np.abs(v).max(initial=1), np.abs(q).max(initial=1),
                                                   np.abs(k).max(initial=1)))
        np.testing.assert_allclose(a, w, rtol=0, atol=_bound(w, terms) * mag * max(1, L, S) ** 0.5,
                                   err_msg=f"g{name}")


@needs_kernel
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal", "pad", "tri"])
def test_kernel_float64_equals_ref_to_rounding(kind):
    rng = np.random.default_rng(1)
    q, k, v, mask = _operands(rng, 2, 2, 33, 270, 9, 13, kind, np.float64, strided=True)
    causal = kind == "causal"
    out, lse = cpu.sdpa_forward(q, k, v, mask, 0.4, causal)
    out8, lse8 = ref.sdpa_forward(q, k, v, mask, 0.4, causal)
    np.testing.assert_allclose(out, out8, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse8))
    g = rng.standard_normal(out.shape)
    for a, w in zip(cpu.sdpa_backward(g, q, k, v, out, lse, mask, 0.4, causal),
                    ref.sdpa_backward(g, q, k, v, out8, lse8, mask, 0.4, causal)):
        np.testing.assert_allclose(a, w, rtol=1e-11, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
@pytest.mark.parametrize("kind", ["none", "float", "causal", "tri"])
def test_kernel_half_is_the_float32_kernel_rounded_once(dtype, kind):
    """Half inputs are converted to float32 while packing and stored rounded once: the
    result is the float32 kernel's on the widened values, bit for bit."""
    rng = np.random.default_rng(2)
    q, k, v, mask = _operands(rng, 1, 2, 29, 140, 16, 8, kind, dtype)
    causal = kind == "causal"
    up = [None if x is None else x.astype(np.float32) for x in (q, k, v, mask)]
    out, lse = cpu.sdpa_forward(q, k, v, mask, 0.25, causal)
    out32, lse32 = cpu.sdpa_forward(*up, 0.25, causal)
    assert out.dtype == dtype and lse.dtype == np.float32
    np.testing.assert_array_equal(out.view(np.uint16), out32.astype(dtype).view(np.uint16))
    np.testing.assert_array_equal(lse, lse32)
    g = rng.standard_normal(out.shape).astype(dtype)
    got = cpu.sdpa_backward(g, q, k, v, out, lse, mask, 0.25, causal)
    want = cpu.sdpa_backward(g.astype(np.float32), *up[:3], out.astype(np.float32), lse, up[3], 0.25, causal)
    for a, w in zip(got, want):
        np.testing.assert_array_equal(a.view(np.uint16), w.astype(dtype).view(np.uint16))


@needs_kernel
def test_kernel_threads_do_not_change_the_result():
    rng = np.random.default_rng(3)
    q, k, v, mask = _operands(rng, 2, 3, 70, 90, 16, 16, "float")
    before = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = cpu.sdpa_forward(q, k, v, mask, 0.3, False)
        g1 = cpu.sdpa_backward(one[0], q, k, v, one[0], one[1], mask, 0.3, False)
        tinyfw.set_num_threads(2)
        two = cpu.sdpa_forward(q, k, v, mask, 0.3, False)
        g2 = cpu.sdpa_backward(one[0], q, k, v, one[0], one[1], mask, 0.3, False)
    finally:
        tinyfw.set_num_threads(before)
    for a, b in zip(one + g1, two + g2):
        np.testing.assert_array_equal(a, b)


@needs_kernel
def test_kernel_refuses_bad_arguments():
    x = np.zeros((1, 2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="sdpa_forward: k must have shape"):
        cpu.sdpa_forward(x, np.zeros((1, 2, 5, 3), np.float32), np.zeros((1, 2, 5, 4), np.float32), None, 1.0, False)
    with pytest.raises(TypeError, match="v dtype float64 does not match"):
        cpu.sdpa_forward(x, x, x.astype(np.float64), None, 1.0, False)
    with pytest.raises(ValueError, match="must be 4-d"):
        cpu.sdpa_forward(x[0], x[0], x[0], None, 1.0, False)
    with pytest.raises(ValueError, match="mask must have shape"):
        cpu.sdpa_forward(x, x, x, np.ones((1, 2, 3, 2), bool), 1.0, False)
    with pytest.raises(TypeError, match="a float mask dtype float64"):
        cpu.sdpa_forward(x, x, x, np.zeros((1, 2, 3, 3), np.float64), 1.0, False)
    with pytest.raises(TypeError, match="lse must be float32"):
        cpu.sdpa_backward(x, x, x, x, x, np.zeros((1, 2, 3), np.float64), None, 1.0, False)


# -- the op: reference, PyTorch, gradients ----------------------------------------------------------
def _composed64(q, k, v, mask, scale, causal):
    """softmax(scale q kᵀ + mask) v in float64 numpy, fully masked rows 0: an independent
    spelling of the op (the test's own), not the reference backend's code."""
    s = np.einsum("...le,...se->...ls", q, k) * scale
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    out = np.zeros(s.shape[:-1] + v.shape[-1:])
    for idx in np.ndindex(*s.shape[:-1]):
        row = s[idx]
        if np.isfinite(row).any():
            p = np.exp(row - row.max())
            out[idx] = (p / p.sum()) @ v[idx[:-1]]
    return out


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@given(dims=st.tuples(st.integers(0, 3), st.integers(1, 9), st.integers(0, 12), st.integers(1, 6),
                      st.integers(1, 5)),
       kind=st.sampled_from(["none", "bool", "float", "causal"]), seed=st.integers(0, 2 ** 16))
def test_op_float64_equals_the_composition(backend, dims, kind, seed):
    """Batch dims () / (n,) / (a, b) / (a, b, c), masks broadcast from (L, S) or per batch."""
    nb, L, S, E, ev = dims
    rng = np.random.default_rng(seed)
    batch = [(), (2,), (2, 3), (2, 1, 2)][nb]
    q, k, v = (rng.standard_normal(batch + s) for s in ((L, E), (S, E), (S, ev)))
    mask = None
    if kind == "bool":
        mask = rng.random((L, S)) < 0.5
    elif kind == "float":
        mask = rng.standard_normal(batch[-1:] + (L, S))
    tinyfw.set_backend(backend)
    got = F.scaled_dot_product_attention(*(tinyfw.tensor(x) for x in (q, k, v)),
                                         attn_mask=None if mask is None else tinyfw.tensor(mask),
                                         is_causal=kind == "causal", scale=0.7)
    want = _composed64(q, k, v, mask, 0.7, kind == "causal")
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(npy(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal"])
def test_gradcheck_float64(backend, kind):
    tinyfw.set_backend(backend)
    rng = np.random.default_rng(5)
    q, k, v = (tinyfw.tensor(rng.standard_normal(s), requires_grad=True)
               for s in ((2, 4, 3), (2, 5, 3), (2, 5, 2)))
    mask = None
    if kind == "bool":
        mask = tinyfw.tensor(rng.random((4, 5)) < 0.6)
    elif kind == "float":  # the mask's own gradient is checked too
        mask = tinyfw.tensor(rng.standard_normal((4, 5)), requires_grad=True)

    def f(q, k, v, *m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m[0] if m else mask,
                                              is_causal=kind == "causal")

    ins = (q, k, v) + ((mask,) if kind == "float" else ())
    assert tinyfw.autograd.gradcheck(f, ins)
    assert tinyfw.autograd.gradgradcheck(f, (q, k, v))


@requires_torch
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal", "dead_bool", "dead_float"])
@pytest.mark.parametrize("L,S", [(7, 7), (5, 9), (9, 4)])
def test_matches_pytorch(kind, L, S):
    """Values and gradients of q, k, v (and of a float mask) against PyTorch 2.13, whose
    fully masked rows are 0 with zero gradients too."""
    rng = np.random.default_rng(6)
    arrs = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, L, 8), (2, 3, S, 8), (2, 3, S, 5))]
    mask = None
    if kind in ("bool", "dead_bool"):
        mask = rng.random((L, S)) < 0.6
        if kind == "dead_bool":
            mask[1] = False
    elif kind in ("float", "dead_float"):
        mask = rng.standard_normal((3, L, S)).astype(np.float32)
        if kind == "dead_float":
            mask[:, 2] = -np.inf
    g = rng.standard_normal((2, 3, L, 5)).astype(np.float32)
    ours = [tinyfw.tensor(a, requires_grad=True) for a in arrs]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrs]
    fm = mask is not None and mask.dtype != bool
    om = None if mask is None else tinyfw.tensor(mask, requires_grad=fm)
    tm = None if mask is None else torch.tensor(mask, requires_grad=fm)
    o = F.scaled_dot_product_attention(*ours, attn_mask=om, is_causal=kind == "causal")
    t = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=tm, is_causal=kind == "causal")
    np.testing.assert_allclose(npy(o), t.detach().numpy(), rtol=1e-5, atol=2e-6)
    (o * tinyfw.tensor(g)).sum().backward()
    (t * torch.tensor(g)).sum().backward()
    for a, b in zip(ours + ([om] if fm else []), theirs + ([tm] if fm else [])):
        np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_fully_masked_rows_give_zero_and_no_nan():
    q = tinyfw.randn(1, 3, 4, requires_grad=True)
    k = tinyfw.randn(1, 5, 4, requires_grad=True)
    v = tinyfw.randn(1, 5, 2, requires_grad=True)
    keep = np.ones((3, 5), bool)
    keep[0] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.tensor(keep))
    assert np.array_equal(npy(out)[0, 0], [0.0, 0.0])
    out.sum().backward()
    assert np.array_equal(npy(q.grad)[0, 0], np.zeros(4))
    assert all(np.isfinite(npy(t.grad)).all() for t in (q, k, v))
    empty = F.scaled_dot_product_attention(q, k[:, :0], v[:, :0])  # S == 0: every row is dead
    assert np.array_equal(npy(empty), np.zeros((1, 3, 2)))


@pytest.mark.parametrize("call, error, match", [
    (lambda q, k, v: F.scaled_dot_product_attention(q, k[..., :3], v), ValueError, "same last dim"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v[:, :4]), ValueError, "same length"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k.double(), v), TypeError, "key dtype float64"),
    (lambda q, k, v: F.scaled_dot_product_attention(q.long(), k, v), TypeError, "query must be a floating"),
    (lambda q, k, v: F.scaled_dot_product_attention(q[0, 0], k, v), ValueError, "at least 2 dims"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.ones(3, 5, dtype="bool"),
                                                    is_causal=True), ValueError, "both given"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.ones(4, 5)), ValueError,
     "does not broadcast"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.ones(3, 5, dtype="int64")),
     TypeError, "bool .* or floating point"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.ones(3, 5).double()),
     TypeError, "attn_mask dtype float64"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=1.0), ValueError, "dropout_p"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k[:1].expand(3, 5, 4), v[:2]), RuntimeError,
     "batch dims"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tinyfw.ones(3, 5, device="meta")),
     RuntimeError, "attn_mask is on meta"),
])
def test_errors_name_the_problem(call, error, match):
    q, k, v = tinyfw.randn(2, 3, 4), tinyfw.randn(2, 5, 4), tinyfw.randn(2, 5, 6)
    with pytest.raises(error, match=match):
        call(q, k, v)


def test_default_scale_needs_features():
    with pytest.raises(ValueError, match="needs E > 0"):
        F.scaled_dot_product_attention(tinyfw.randn(2, 0), tinyfw.randn(3, 0), tinyfw.randn(3, 2))
    out = F.scaled_dot_product_attention(tinyfw.randn(2, 0), tinyfw.randn(3, 0), tinyfw.ones(3, 2), scale=1.0)
    np.testing.assert_allclose(npy(out), np.ones((2, 2)))  # equal scores: the mean of v


def test_dropout_is_the_composition_with_the_same_draws():
    q, k, v = tinyfw.randn(2, 6, 4), tinyfw.randn(2, 7, 4), tinyfw.randn(2, 7, 3)
    tinyfw.manual_seed(11)
    got = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)
    tinyfw.manual_seed(11)
    p = F.softmax(q @ k.transpose(-2, -1) * 0.5, -1)
    want = F.dropout(p, 0.3, True) @ v
    np.testing.assert_allclose(npy(got), npy(want), rtol=1e-6, atol=1e-6)
    assert not np.allclose(npy(got), npy(F.scaled_dot_product_attention(q, k, v)))


def test_autocast_runs_it_in_bfloat16():
    q, k, v = tinyfw.randn(2, 5, 8), tinyfw.randn(2, 6, 8), tinyfw.randn(2, 6, 8)
    keep = tinyfw.tensor(np.random.default_rng(0).random((5, 6)) < 0.7)
    with tinyfw.autocast("cpu", dtype=tinyfw.bfloat16):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert out.dtype is tinyfw.bfloat16
    want = F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), attn_mask=keep)
    np.testing.assert_array_equal(npy(out).astype(np.float32), npy(want).astype(np.float32))


def test_traced_equals_eager_forward_and_backward():
    def f(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()

    rng = np.random.default_rng(8)
    ins = [tinyfw.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
           for s in ((2, 2, 6, 4), (2, 2, 6, 4), (2, 2, 6, 3))]
    f(*ins).backward()
    eager = [npy(t.grad) for t in ins]
    for t in ins:
        t.grad = None
    traced = tinyfw.jit.trace(f, tuple(ins))
    traced(*ins).backward()
    for a, b in zip(eager, ins):
        np.testing.assert_allclose(npy(b.grad), a, rtol=1e-6, atol=1e-6)


def test_onnx_export_decomposes_it(tmp_path, on_the_cpu):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    keep = np.random.default_rng(9).random((5, 7)) < 0.6
    keep[3] = False  # a dead row: 0 in the exported graph too

    def f(x):
        k = x[:, :, :7] * 0.5
        return (F.scaled_dot_product_attention(x[:, :, :5], k, k, attn_mask=tinyfw.tensor(keep))
                + F.scaled_dot_product_attention(x[:, :, :5], k, k, is_causal=True))

    x = tinyfw.randn(2, 3, 8, 4)
    path = str(tmp_path / "sdpa.onnx")
    tinyfw.onnx.export(f, (x,), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    (got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input_0": npy(x)})
    np.testing.assert_allclose(got, npy(f(x)), rtol=1e-5, atol=1e-6)


# -- MultiheadAttention on the op -----------------------------------------------------------------
@pytest.mark.parametrize("masks", ["none", "bool", "float", "padding", "bool+padding", "causal",
                                   "causal+padding"])
@pytest.mark.parametrize("layout", ["seq_first", "batch_first", "unbatched"])
def test_multihead_attention_fused_path_equals_the_explicit_one(masks, layout):
    """need_weights=False runs F.scaled_dot_product_attention; need_weights=True the
    explicit softmax (PyTorch's split too): the outputs agree."""
    tinyfw.manual_seed(3)
    rng = np.random.default_rng(4)
    n, L, e, h = 2, 6, 8, 2
    mha = tinyfw.nn.MultiheadAttention(e, h, batch_first=layout == "batch_first")
    shape = (L, e) if layout == "unbatched" else (n, L, e) if layout == "batch_first" else (L, n, e)
    x = tinyfw.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    kw = {"is_causal": "causal" in masks}
    if masks.startswith("bool"):
        block = rng.random((L, L)) < 0.3
        np.fill_diagonal(block, False)  # every query keeps a key (else the paths differ: NaN vs 0)
        kw["attn_mask"] = tinyfw.tensor(block)
    elif masks == "float":
        kw["attn_mask"] = tinyfw.tensor(rng.standard_normal((n * h, L, L)).astype(np.float32))
    if "padding" in masks:
        pad = np.zeros((n, L), bool)
        pad[:, -2:] = True
        kw["key_padding_mask"] = tinyfw.tensor(pad[0] if layout == "unbatched" else pad)
    if layout == "unbatched" and masks == "float":
        kw["attn_mask"] = kw["attn_mask"][:h]
    fused, none = mha(x, x, x, need_weights=False, **kw)
    explicit, _ = mha(x, x, x, need_weights=True, **kw)
    assert none is None
    np.testing.assert_allclose(npy(fused), npy(explicit), rtol=1e-5, atol=1e-6)
    fused.sum().backward()
    g = npy(x.grad)
    x.grad = None
    explicit.sum().backward()
    np.testing.assert_allclose(g, npy(x.grad), rtol=1e-4, atol=1e-5)


@requires_torch
def test_transformer_encoder_layer_matches_pytorch_through_the_fused_op():
    """The encoder layer's self-attention passes need_weights=False: the fused op."""
    tinyfw.manual_seed(0)
    ours = tinyfw.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True)
    theirs = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.tensor(npy(dict(ours.named_parameters())[name])))
    x = np.random.default_rng(1).standard_normal((3, 7, 16)).astype(np.float32)
    pad = np.zeros((3, 7), bool)
    pad[:, 5:] = True
    got = ours(tinyfw.tensor(x), src_key_padding_mask=tinyfw.tensor(pad))
    want = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(npy(got), want.detach().numpy(), rtol=1e-4, atol=1e-5)
