"""Regressions for what the AddressSanitizer + UBSan run found (docs/sanitizers.md).

UBSan reported `load of misaligned address ... for type 'const float'` in the C++ kernels
when `from_numpy` shared an array whose data sits at an odd byte offset: the kernels read
elements through typed pointers, which is undefined behaviour on such memory. The C++ backend
now rejects it with a ValueError naming the kernel; the numpy reference backend computes it.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.dispatch as dispatch
import tinyfw.nn.functional as F

# numpy arrays at chosen misalignments, through the cpu backend's kernels: CPU tensors
pytestmark = pytest.mark.usefixtures("on_the_cpu")


def _unaligned(shape: tuple, dtype) -> np.ndarray:
    """A numpy array of `shape` whose data pointer is one byte off its element alignment."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    a = np.frombuffer(bytearray(n * dt.itemsize + 1), dtype=dt, count=n, offset=1)
    a = a.reshape(shape)
    a[...] = np.arange(n, dtype=dt).reshape(shape) % 7
    assert not a.flags.aligned
    return a


def _cpu_backend():
    """The C++ backend module, or skip when tinyfw._C is not built."""
    cpu = pytest.importorskip("tinyfw.backend.cpu")
    if not getattr(cpu, "KERNELS", ()):
        pytest.skip("tinyfw._C is not built")
    return cpu


CASES = [
    ("add", np.float32, (5, 7), lambda t: t + t, lambda a: a + a),
    ("sum", np.float64, (5, 7), lambda t: t.sum(dim=1), lambda a: a.sum(axis=1)),
    ("matmul", np.float32, (6, 6), lambda t: t @ t, lambda a: a @ a),
    ("max_pool2d", np.float32, (1, 2, 4, 4), lambda t: F.max_pool2d(t, 2),
     lambda a: a.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))),
    ("conv2d", np.float32, (1, 1, 4, 4), lambda t: F.conv2d(t, tinyfw.ones(1, 1, 2, 2), stride=2),
     lambda a: a.reshape(1, 1, 2, 2, 2, 2).sum(axis=(3, 5))),
    ("log_softmax", np.float64, (3, 5), lambda t: F.log_softmax(t, dim=1),
     lambda a: a - np.log(np.exp(a).sum(axis=1, keepdims=True))),
]


@pytest.mark.parametrize("name,dtype,shape,op,ref", CASES, ids=[c[0] for c in CASES])
def test_unaligned_input(name, dtype, shape, op, ref):
    """cpu raises a ValueError naming the kernel (never UB); ref computes the right values."""
    a = _unaligned(shape, dtype)
    cpu = _cpu_backend()
    old = dispatch.get_backend()
    try:
        dispatch.set_backend("cpu")
        assert dispatch.get_backend() is cpu
        with pytest.raises(ValueError, match="not aligned"):
            op(tinyfw.from_numpy(a))
        dispatch.set_backend("ref")
        out = op(tinyfw.from_numpy(a)).numpy()
        np.testing.assert_allclose(out, ref(np.array(a)), rtol=1e-12, atol=0)
    finally:
        dispatch._B = old


def _adam_step(arr: np.ndarray) -> np.ndarray:
    """One Adam step (lr 0.1, gradient 1) on a parameter sharing `arr`; the new values."""
    p = tinyfw.nn.Parameter(tinyfw.from_numpy(arr))
    p.grad = tinyfw.ones(*arr.shape)
    tinyfw.optim.Adam([p], lr=0.1).step()
    return p.detach().numpy().copy()


def test_unaligned_param_in_optimizer_step():
    """The fused C++ optimizer step rejects an unaligned parameter; ref updates it correctly."""
    cpu = _cpu_backend()
    old = dispatch.get_backend()
    try:
        dispatch.set_backend("cpu")
        assert dispatch.get_backend() is cpu
        with pytest.raises(ValueError, match="not aligned"):
            _adam_step(_unaligned((3, 4), np.float32))
        expected = _adam_step(np.array(_unaligned((3, 4), np.float32)))  # aligned copy
        dispatch.set_backend("ref")
        np.testing.assert_allclose(_adam_step(_unaligned((3, 4), np.float32)), expected,
                                   rtol=1e-6, atol=0)
    finally:
        dispatch._B = old
