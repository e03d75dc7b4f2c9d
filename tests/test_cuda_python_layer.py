"""The CUDA backend's Python layer on the CPU: tinyfw/backend/cuda*.py run over
tests/cuda_emulator.py (numpy kernels with tinyfw._cuda's interface) in place of the
compiled module, so the views, broadcasting, output dtypes, permutations and the
cat/pad/tile/flip/index plumbing are checked against ref without a GPU.

Every primitive of ref either runs (and must equal ref bit for bit: the emulated kernels
are ref's, so any difference is the Python layer's) or raises NotImplementedError naming
the op and the device.  Arguments come in several memory layouts (uploaded with their
strides, tests/cuda_util.py).
"""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from tinyfw.backend import ref

import cuda_emulator
from cuda_util import CudaUnderTest
from helpers import in_layout
from test_conformance_devices import CASES

_MODULES = ("tinyfw.backend.cuda_ops", "tinyfw.backend.cuda_data")
# numpy's results of these depend on the arrays' alignment and strides (its SIMD loops),
# by an ulp or so: the emulated kernel's copy of the data may take the other loop
_LIBM = {"exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sigmoid", "silu", "erf", "pow",
         "atan2", "softplus", "silu_backward"}


def _reload_backend(cuda_module):
    if cuda_module is None:
        sys.modules.pop("tinyfw._cuda", None)
    else:
        sys.modules["tinyfw._cuda"] = cuda_module
    for m in _MODULES:
        sys.modules.pop(m, None)
    importlib.reload(sys.modules["tinyfw.backend.cuda"])


@pytest.fixture(scope="module")
def K():
    real = sys.modules.get("tinyfw._cuda")
    try:  # restored even when installing the emulator fails halfway
        _reload_backend(cuda_emulator)
        yield CudaUnderTest()
    finally:
        _reload_backend(real)


def _flat(x) -> list:
    return [v for item in x for v in _flat(item)] if isinstance(x, tuple) else [x]


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_every_primitive_runs_or_refuses(K, name, data, seed):
    rng = np.random.default_rng(seed)
    args, kwargs = CASES[name](data.draw, rng)
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "stepped", "reversed"]))
    args = [in_layout(a, layout) if isinstance(a, np.ndarray) and a.flags.writeable else a for a in args]
    if name in K.B.NOT_IMPLEMENTED:
        # uint8 (the int8 primitives, issue 16's integer ops) and int16 arguments are refused
        # already on the way to the device
        with pytest.raises((NotImplementedError, TypeError),
                           match=f"{name}: not implemented on the cuda device|"
                                 "cuda: dtype (uint8|int16) is not supported"):
            getattr(K, name)(*args, **kwargs)
        return
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"):
        expected = getattr(ref, name)(*args, **kwargs)
        try:
            got = getattr(K, name)(*mine, **kwargs)
        except NotImplementedError as e:  # index forms the CUDA kernels do not cover yet
            assert name.startswith("index") and "only integer index arrays" in str(e), e
            return
    if expected is None:  # in place: compare the written arguments
        assert got is None
        got = tuple(a for a in mine if isinstance(a, np.ndarray))
        expected = tuple(a for a in args if isinstance(a, np.ndarray))
    if name == "dropout":  # the mask comes from Philox on a GPU, from the emulator here
        y, mask = got
        x, p = args[0], args[1]
        assert mask.dtype == np.bool_ and mask.shape == x.shape and y.dtype == x.dtype
        return
    for g, e in zip(_flat(got), _flat(expected)):
        if e is None:
            assert g is None
            continue
        e = np.asarray(e)
        assert g.dtype == e.dtype and g.shape == e.shape, f"{name}: {g.dtype}{g.shape} vs ref {e.dtype}{e.shape}"
        if name in _LIBM and e.dtype.kind in "fV":  # numpy's own SIMD/scalar paths differ by ulps
            eps = {2: 2.0 ** -7, 4: 2.0 ** -23, 8: 2.0 ** -52}[e.itemsize] if str(e.dtype) != "float16" else 2.0 ** -10
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=4 * eps, atol=0,
                                       err_msg=f"{name} {kwargs}")
        else:
            np.testing.assert_array_equal(g, e, err_msg=f"{name} {kwargs}")


def test_tensor_api_over_the_emulator(K):
    """Tensors on 'cuda' through the public API: ops, views, autograd, transfers."""
    x = tinyfw.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], device="cuda", requires_grad=True)
    assert x.device.type == "cuda"
    y = (x.T * 2 + 1).relu()[1:].sum(dim=0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[0, 0, 2], [0, 2, 0]])
    z = tinyfw.cat([x.detach(), x.detach().flip(0)], dim=1)
    np.testing.assert_array_equal(z.cpu().numpy()[1], [4, 5, -6, 1, -2, 3])
    i = tinyfw.tensor([1, 0, 1], device="cuda")
    np.testing.assert_array_equal(x.detach()[i].cpu().numpy(), x.detach().cpu().numpy()[[1, 0, 1]])
    with pytest.raises(NotImplementedError, match="matmul: not implemented on the cuda device"):
        x @ x.T
    assert x.float().to("cpu").device.type == "cpu"
    h = x.detach().cpu().numpy()
    for idx in [(Ellipsis, 1), (None, slice(None), slice(None, None, 2)), (1, Ellipsis, None), (-1, slice(0, 3, 2))]:
        np.testing.assert_array_equal(x.detach()[idx].cpu().numpy(), h[idx])


def test_rand_draws_on_the_device_from_the_seed(K):
    """tinyfw.rand/randn on cuda call the backend's device generator with a seed from
    tinyfw's generator: the same seed gives the same numbers, the stream advances."""
    tinyfw.manual_seed(7)
    a, b = tinyfw.rand(3, 4, device="cuda"), tinyfw.randn(5, device="cuda")
    tinyfw.manual_seed(7)
    a2, b2 = tinyfw.rand(3, 4, device="cuda"), tinyfw.randn(5, device="cuda")
    np.testing.assert_array_equal(a.cpu().numpy(), a2.cpu().numpy())
    np.testing.assert_array_equal(b.cpu().numpy(), b2.cpu().numpy())
    assert not np.array_equal(a.cpu().numpy(), tinyfw.rand(3, 4, device="cuda").cpu().numpy())
    assert a.dtype is tinyfw.float32 and a.device.type == "cuda"
    assert tinyfw.randint(0, 5, (3,), device="cuda").dtype is tinyfw.int64  # ints: host draws


def test_cuda_arrays_are_backend_arrays(K):
    """The core recognises cuda arrays as device arrays (their device is per instance)."""
    from tinyfw.backend import backend_of, device_of, is_array

    a = K.B.from_host(np.ones(3, np.float32))
    assert is_array(a) and not is_array(tinyfw.ones(3))
    assert device_of(a).type == "cuda" and backend_of(a) is K.B


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "stepped"])
def test_binary_ops_write_into_their_first_operand(K, layout):
    """out= a (the backends' in-place contract, used by gradient accumulation): the same
    values as ref, written into a whatever its layout; anything else for out= is refused."""
    from cuda_util import upload
    from helpers import in_layout

    rng = np.random.default_rng(1)
    a = in_layout(rng.standard_normal((5, 6)).astype(np.float32), layout)
    b = rng.standard_normal(6).astype(np.float32)
    want = ref.add(a, b)
    da = upload(a)  # a's strides kept
    assert da.strides == a.strides
    got = K.B.add(da, K.B.from_host(b), out=da)
    assert got is da
    np.testing.assert_array_equal(K.B.to_host(da), want)
    with pytest.raises(ValueError, match="out= must be a itself"):
        K.B.add(da, K.B.from_host(b), out=K.B.from_host(np.zeros((5, 6), np.float32)))


def test_gradients_accumulate_in_place_over_the_emulator(K):
    x = tinyfw.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    (x * 2).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    assert x.grad is first
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [4.0, 6.0, 8.0])
