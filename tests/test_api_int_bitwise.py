"""Issue 16, integers: the bitwise ops, shifts, gcd/lcm and hash_tensor against PyTorch
(the op_table harness, then explicit dtype-promotion tables over every integer and bool
dtype pair, scalar operands, the operators and in-place forms, and the errors)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinyfw
from helpers import from_np, npy, requires_torch, torch
from op_table import KINDS, OpCase, case_id, check

INT_NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64"]


def ints(*shapes, low: int = -100, high: int = 100, wide: str = "int64", narrow: str = "int8"):
    """An input recipe: integer arrays, `wide` for the float64 run and `narrow` for the
    float32 one (the dtype name only picks which: these ops take no floats)."""
    def make(rng, dtype):
        dt = wide if dtype == "float64" else narrow
        info = np.iinfo(dt)
        return [rng.integers(max(low, info.min), min(high, info.max), s, endpoint=True).astype(dt)
                for s in shapes]
    return make


def shifts(rng, dtype):
    """Values and shift counts, counts outside [0, bits) included."""
    dt = "int64" if dtype == "float64" else "int16"
    bits = 8 * np.dtype(dt).itemsize
    a = rng.integers(-1000, 1000, (3, 5)).astype(dt)
    return [a, rng.integers(-3, bits + 3, (3, 5)).astype(dt)]


def uint8s(rng, dtype):
    return [rng.integers(0, 256, (4, 5)).astype(np.uint8), rng.integers(0, 256, (5,)).astype(np.uint8)]


def floats_with_specials(rng, dtype):
    x = rng.standard_normal((3, 4)).astype(dtype)
    x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return [x]


NO_GRAD = dict(grad=False, kinds=("torch64", "torch32", "ref"))
CASES = [
    OpCase("bitwise_and", tinyfw.bitwise_and, torch.bitwise_and if torch else None,
           ints((3, 4), (4,)), **NO_GRAD),
    OpCase("bitwise_or", lambda a, b: a | b, lambda a, b: a | b, ints((3, 4), (3, 1)), **NO_GRAD),
    OpCase("bitwise_xor", lambda a, b: a.bitwise_xor(b), lambda a, b: a.bitwise_xor(b),
           ints((2, 3), (2, 3)), **NO_GRAD),
    OpCase("bitwise_not", lambda a: ~a, lambda a: ~a, ints((3, 4)), **NO_GRAD),
    OpCase("bitwise_ops_uint8", lambda a, b: (a & b, a | b, a ^ b, ~a, a << 3, a >> 2),
           lambda a, b: (a & b, a | b, a ^ b, ~a, a << 3, a >> 2), uint8s, **NO_GRAD),
    OpCase("left_shift", tinyfw.bitwise_left_shift,
           torch.bitwise_left_shift if torch else None, shifts, **NO_GRAD),
    OpCase("right_shift", lambda a, b: a >> b, lambda a, b: a >> b, shifts, **NO_GRAD),
    OpCase("gcd", tinyfw.gcd, torch.gcd if torch else None, ints((4, 5), (4, 5), low=-60, high=60),
           **NO_GRAD),
    OpCase("lcm", lambda a, b: a.lcm(b), lambda a, b: a.lcm(b),
           ints((4, 5), (5,), low=-127, high=127), **NO_GRAD),
    OpCase("lcm_int32_wraps", tinyfw.lcm, torch.lcm if torch else None,
           ints((30,), (30,), low=-2 ** 31 + 1, high=2 ** 31 - 1, narrow="int32"), **NO_GRAD),
    OpCase("hash_tensor", lambda x: (tinyfw.hash_tensor(x), x.hash_tensor(1, keepdim=True)),
           lambda x: (torch.hash_tensor(x).view(torch.int64),
                      x.hash_tensor(1, keepdim=True).view(torch.int64)),
           lambda rng, dt: [rng.standard_normal((3, 4)).astype(dt)], **NO_GRAD),
    OpCase("hash_tensor_ints", lambda x: tinyfw.hash_tensor(x, (0, 2)),
           lambda x: torch.hash_tensor(x, (0, 2)).view(torch.int64), ints((2, 3, 4)), **NO_GRAD),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def _tf(name: str, vals) -> tinyfw.Tensor:
    return from_np(np.array(vals).astype(name))


def _th(name: str, vals):
    return torch.from_numpy(np.array(vals).astype(name))


def _same(got: tinyfw.Tensor, want) -> None:
    assert got.dtype.name == str(want.dtype).split(".")[-1], (got.dtype, want.dtype)
    np.testing.assert_array_equal(npy(got), want.numpy())


@requires_torch
@pytest.mark.parametrize("a,b", list(itertools.product(INT_NAMES, INT_NAMES)))
def test_promotion_table_vs_torch(a, b):
    """Every pair of integer/bool dtypes: the bitwise ops' dtype and values, and (without
    bools) the shifts' and gcd's, as PyTorch computes them; also + and == on the pair."""
    rng = np.random.default_rng(hash((a, b)) % 2 ** 32)
    va = rng.integers(0, 2, 6) if a == "bool" else rng.integers(0, 100, 6)
    vb = rng.integers(0, 2, 6) if b == "bool" else rng.integers(0, 7, 6)
    x, y, px, py = _tf(a, va), _tf(b, vb), _th(a, va), _th(b, vb)
    for op in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        _same(getattr(tinyfw, op)(x, y), getattr(torch, op)(px, py))
    if "bool" not in (a, b):
        _same(x << y, px << py)
        _same(x >> y, px >> py)
        _same(tinyfw.gcd(x, y), torch.gcd(px, py))
        _same(tinyfw.lcm(x, y), torch.lcm(px, py))
    if a != "bool" or b != "bool":
        _same(x + y, px + py)
    _same(x == y, px == py)


@requires_torch
@pytest.mark.parametrize("name", INT_NAMES)
@pytest.mark.parametrize("scalar", [True, 3, -1, 300])
def test_python_scalar_operands_vs_torch(name, scalar):
    """A Python int joins the tensor's dtype (wrapping into it, as uint8 & -1 does);
    reflected forms put the number first."""
    v = [0, 1, 1, 0] if name == "bool" else [0, 5, 100, 127]
    x, px = _tf(name, v), _th(name, v)
    if isinstance(scalar, bool) or name != "bool":
        _same(x & scalar, px & scalar)
        _same(scalar | x, scalar | px)
        _same(x ^ scalar, px ^ scalar)
    if name != "bool" and not isinstance(scalar, bool) and scalar >= 0:
        _same(x << 2, px << 2)
        _same(scalar >> x, scalar >> px)


@requires_torch
def test_bool_tensors_and_not():
    p, q = [True, True, False, False], [True, False, True, False]
    x, y, px, py = _tf("bool", p), _tf("bool", q), _th("bool", p), _th("bool", q)
    for got, want in [(x & y, px & py), (x | y, px | py), (x ^ y, px ^ py), (~x, ~px),
                      (tinyfw.bitwise_not(y), torch.bitwise_not(py))]:
        _same(got, want)


@requires_torch
@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_shift_edges_vs_torch(name):
    """Counts 0 .. bits + 1 and negative ones on the extreme values of each dtype."""
    info = np.iinfo(name)
    bits = 8 * np.dtype(name).itemsize
    vals = np.array([info.min, info.min + 1, -1 if info.min else 0, 0, 1, info.max], name)
    counts = np.array([-bits - 1, -1, 0, 1, bits - 1, bits, bits + 1])
    a, c = np.repeat(vals, counts.size), np.tile(counts, vals.size).astype(name if info.min else "int64")
    if not info.min:  # uint8 counts: keep them in range of the dtype (PyTorch promotes too)
        c = np.clip(c, 0, 255)
    x, y, px, py = from_np(a), from_np(c), torch.from_numpy(a), torch.from_numpy(c)
    _same(x << y, px << py)
    _same(x >> y, px >> py)


@requires_torch
@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_gcd_lcm_extremes_vs_torch(name):
    info = np.iinfo(name)
    cands = {int(info.min), int(info.min) + 1, -6, -1, 0, 1, 4, 6, int(info.max) - 1, int(info.max)}
    vals = np.array(sorted(v for v in cands if info.min <= v <= info.max), name)
    a, b = np.repeat(vals, vals.size), np.tile(vals, vals.size)
    x, y, px, py = from_np(a), from_np(b), torch.from_numpy(a), torch.from_numpy(b)
    g = torch.gcd(px, py)
    _same(tinyfw.gcd(x, y), g)
    # PyTorch's lcm divides a by the wrapped gcd -1: MIN / -1 traps (SIGFPE kills the
    # process) for int32/int64; tinyfw gives |-a * b| wrapped (docs/semantics.md)
    trap = (g.numpy() == -1) & (a == info.min) if np.dtype(name).itemsize >= 4 else np.zeros(a.size, bool)
    ok = ~trap
    _same(tinyfw.lcm(from_np(a[ok]), from_np(b[ok])), torch.lcm(px[ok], py[ok]))
    if trap.any():
        with np.errstate(over="ignore"):
            want = np.abs(np.negative(a[trap]) * b[trap])
        np.testing.assert_array_equal(npy(tinyfw.lcm(from_np(a[trap]), from_np(b[trap]))), want)


@requires_torch
def test_inplace_forms_vs_torch():
    a = np.array([12, -7, 100, 0, 33], np.int32)
    b = np.array([8, 3, -4, 5, 11], np.int32)
    for op in ("__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__", "bitwise_and_",
               "bitwise_or_", "bitwise_xor_", "gcd_", "lcm_", "bitwise_left_shift_",
               "bitwise_right_shift_"):
        bb = np.abs(b) % 5 if "shift" in op else b
        x, px = from_np(a.copy()), torch.from_numpy(a.copy())
        r, pr = getattr(x, op)(from_np(bb)), getattr(px, op)(torch.from_numpy(bb))
        assert r is x, op
        _same(x, px)
        del pr
    x, px = from_np(a.copy()), torch.from_numpy(a.copy())
    x.bitwise_not_()
    px.bitwise_not_()
    _same(x, px)
    x, px = from_np(a.copy()), torch.from_numpy(a.copy())
    _same(tinyfw.gcd_(x, from_np(b)), torch.gcd_(px, torch.from_numpy(b)))
    _same(tinyfw.lcm_(x, from_np(b)), torch.lcm_(px, torch.from_numpy(b)))


def test_version_counter_and_views():
    """x &= y writes through to the base of a view and bumps the version counter."""
    base = tinyfw.arange(8)
    v = base[2:5]
    before = base._version[0]
    v &= 1
    assert base.tolist() == [0, 1, 0, 1, 0, 5, 6, 7] and base._version[0] == before + 1


def test_meta_shapes_and_dtypes():
    x = tinyfw.empty((3, 1), dtype="int16", device="meta")
    y = tinyfw.empty((4,), dtype="uint8", device="meta")
    for out in (x & y, x | y, x ^ y, x << y, x >> y, tinyfw.gcd(x, y), tinyfw.lcm(x, y)):
        assert out.shape == (3, 4) and out.dtype is tinyfw.int16 and out.device.type == "meta"
    assert (~y).dtype is tinyfw.uint8
    h = tinyfw.hash_tensor(x, 0, keepdim=True)
    assert h.shape == (1, 1) and h.dtype is tinyfw.int64


@pytest.mark.parametrize("call,msg", [
    (lambda: tinyfw.tensor([1.5]) & 1, "bitwise_and: expected integer or bool tensors, got float32"),
    (lambda: tinyfw.tensor([1]) | tinyfw.tensor([1.0]), "bitwise_or: expected integer or bool"),
    (lambda: ~tinyfw.tensor([1.0]), "bitwise_not: expected an integer or bool tensor, got float32"),
    (lambda: tinyfw.tensor([True]) << tinyfw.tensor([True]), "bitwise_left_shift: expected integer tensors, got bool"),
    (lambda: tinyfw.tensor([1.0]) >> 1, "bitwise_right_shift: expected integer tensors, got float32"),
    (lambda: tinyfw.gcd(tinyfw.tensor([4]), 2), "gcd: expected two tensors, got Tensor and int"),
    (lambda: tinyfw.lcm(tinyfw.tensor([4.0]), tinyfw.tensor([2.0])), "lcm: expected integer tensors"),
    (lambda: tinyfw.tensor([[1, 2]]) & tinyfw.tensor([1, 2, 3]), "bitwise_and"),
    (lambda: tinyfw.hash_tensor(tinyfw.tensor([1.0]), mode=1), "hash_tensor: unknown mode 1"),
    (lambda: tinyfw.hash_tensor(tinyfw.zeros(0, 2)), "hash_tensor: the reduction dim must be given"),
    (lambda: tinyfw.hash_tensor(tinyfw.zeros(0, 2), 0), "hash_tensor: reduction dim 0 has size 0"),
])
def test_errors_name_the_op(call, msg):
    with pytest.raises((TypeError, RuntimeError, IndexError, ValueError), match=msg):
        call()


class _MaskModel(tinyfw.nn.Module):
    """Bool logic and (opset >= 18) integer bitwise ops inside a float model."""

    def __init__(self, ints: bool):
        super().__init__()
        self.ints = ints

    def forward(self, x):
        m = ~((x > 0) & (x < 1)) | (x > 1.5) ^ (x < -1.5)
        out = x * m.float()
        if self.ints:
            k = (x * 10).long()
            out = out + ((k & 6) | (k ^ 3)).float() + (~k).float()
        return out


@pytest.mark.parametrize("ints", [False, True])
def test_onnx_export_of_the_bitwise_ops(tmp_path, ints):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from tinyfw.onnx import MAX_OPSET, MIN_OPSET

    x = tinyfw.tensor(np.random.default_rng(0).uniform(-3, 3, (4, 5)).astype(np.float32))
    model = _MaskModel(ints)
    opset = MAX_OPSET if ints else MIN_OPSET
    if ints and MAX_OPSET < 18:
        pytest.skip("integer Bitwise* ops need ONNX opset 18")
    if ints and MIN_OPSET < 18:
        with pytest.raises(NotImplementedError, match="BitwiseAnd on integers needs opset 18"):
            tinyfw.onnx.export(model, (x,), str(tmp_path / "old.onnx"), opset_version=MIN_OPSET)
    path = str(tmp_path / "m.onnx")
    tinyfw.onnx.export(model, (x,), path, opset_version=opset)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    (got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input_0": npy(x)})
    with tinyfw.no_grad():
        np.testing.assert_array_equal(got, npy(model(x)))


_OPS = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
        "gcd", "lcm"]


@requires_torch
@settings(max_examples=60, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                            max_side=4),
       da=st.sampled_from(INT_NAMES[1:]), db=st.sampled_from(INT_NAMES[1:]),
       op=st.sampled_from(_OPS), seed=st.integers(0, 2 ** 16), strided=st.booleans())
def test_broadcast_shapes_dtypes_and_layouts_vs_torch(shapes, da, db, op, seed, strided):
    """Any broadcastable pair of shapes (empty dims included), any two integer dtypes,
    contiguous or strided operands: the op's dtype and values are PyTorch's."""
    rng = np.random.default_rng(seed)
    (sa, sb), _ = shapes
    a = rng.integers(0, 100, sa).astype(da)
    b = rng.integers(0, 9, sb).astype(db)
    if strided and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]  # a stepped view with a's values
    _same(getattr(tinyfw, op)(from_np(a), from_np(b)),
          getattr(torch, op)(torch.from_numpy(a.copy()), torch.from_numpy(b)))
