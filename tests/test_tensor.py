"""Tensor construction, attributes, numpy interop, conversions and devices, checked
against PyTorch where PyTorch defines the answer."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tinyfw
from helpers import DEVICE, assert_close, npy, requires_torch, torch
from tinyfw.backend import backend_of


def _same_memory(a: tinyfw.Tensor, b: tinyfw.Tensor) -> bool:
    """True when two tensors view one buffer (asked of their backend: any device)."""
    return backend_of(a._data).memory_owner(a._data) is backend_of(b._data).memory_owner(b._data)


@requires_torch
@pytest.mark.parametrize("data", [1, 2.5, True, [1, 2], [1.0, 2], [[True, False]], [[1, 2], [3, 4]],
                                  [], [[]], np.float64(1.5), np.int32(3)])
def test_tensor_dtype_inference_vs_torch(data):
    a, b = tinyfw.tensor(data), torch.tensor(data)
    assert a.dtype.name == str(b.dtype).split(".")[1], data
    assert a.shape == tuple(b.shape)
    assert_close(a, b, a.dtype.name if a.dtype.is_floating_point else "int")


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16,
                                      np.int8, np.int32, np.int64, np.bool_])
def test_from_numpy_is_zero_copy_and_numpy_shares_memory(np_dtype):
    a = np.arange(6).reshape(2, 3).astype(np_dtype)
    t = tinyfw.from_numpy(a)
    assert t.dtype.np == np.dtype(np_dtype)
    assert np.shares_memory(t.numpy(), a)
    assert np.shares_memory(np.asarray(t), a)
    a[0, 0] = 1
    assert t[0, 0].item() == 1
    # non-contiguous numpy arrays are taken as they are (a view of a view)
    s = tinyfw.from_numpy(a[:, ::2])
    assert np.shares_memory(s.numpy(), a) and s.shape == (2, 2)
    # tinyfw.tensor always copies
    c = tinyfw.tensor(a)
    assert not np.shares_memory(npy(c), a)


def test_from_numpy_rejects_unsupported_dtypes():
    with pytest.raises(TypeError, match="numpy dtype complex128 is not supported"):
        tinyfw.from_numpy(np.zeros(2, np.complex128))
    with pytest.raises(TypeError, match="expected a numpy array"):
        tinyfw.from_numpy([1, 2])


def test_as_tensor_shares_when_it_can():
    # sharing is a property of CPU tensors: numpy arrays live on the CPU
    a = np.ones(3, np.float32)
    assert np.shares_memory(tinyfw.as_tensor(a, device="cpu").numpy(), a)
    assert not np.shares_memory(tinyfw.as_tensor(a, dtype=tinyfw.float64, device="cpu").numpy(), a)
    on = tinyfw.as_tensor(a)  # the default device: a copy unless that is the CPU
    assert on.device == DEVICE and npy(on).tolist() == [1.0, 1.0, 1.0]
    t = tinyfw.ones(2)
    assert tinyfw.as_tensor(t) is t


@requires_torch
def test_factories_vs_torch():
    cases = [
        (lambda L: L.zeros(2, 3), None), (lambda L: L.zeros((2, 3)), None),
        (lambda L: L.ones(4, dtype=L.float64), None), (lambda L: L.full((2, 2), 7), None),
        (lambda L: L.full((2,), 1.5), None), (lambda L: L.full((2,), True), None),
        (lambda L: L.arange(5), None), (lambda L: L.arange(1, 4, 0.5), None),
        (lambda L: L.arange(10, 0, -3), None), (lambda L: L.arange(0.0, 1.0, 0.1), None),
        (lambda L: L.linspace(0, 1, 7), None), (lambda L: L.linspace(-2, 2, 1), None),
        (lambda L: L.linspace(0, 1, 0), None), (lambda L: L.eye(3), None),
        (lambda L: L.eye(2, 4, dtype=L.int64), None), (lambda L: L.zeros(0, 3), None),
        (lambda L: L.empty(2, 3).shape, "shape"),
    ]
    for f, kind in cases:
        a, b = f(tinyfw), f(torch)
        if kind == "shape":
            assert tuple(a) == tuple(b)
            continue
        assert a.dtype.name == str(b.dtype).split(".")[1]
        assert_close(a, b, a.dtype.name if a.dtype.is_floating_point else "int")


@requires_torch
def test_like_and_new_factories_vs_torch():
    x = tinyfw.ones(2, 3, dtype=tinyfw.float64)
    p = torch.ones(2, 3, dtype=torch.float64)
    for name in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
        a, b = getattr(tinyfw, name)(x), getattr(torch, name)(p)
        assert a.shape == tuple(b.shape) and a.dtype is tinyfw.float64
    assert_close(tinyfw.full_like(x, 3), torch.full_like(p, 3), "float64")
    assert tinyfw.zeros_like(x, dtype=tinyfw.int32).dtype is tinyfw.int32
    assert x.new_zeros(4).dtype is tinyfw.float64 and x.new_ones((1, 2)).shape == (1, 2)
    assert x.new_full((2,), 5).tolist() == [5.0, 5.0]
    assert x.new_tensor([1, 2]).dtype is tinyfw.float64


def test_random_constructors():
    tinyfw.manual_seed(0)
    r = tinyfw.rand(1000)
    assert r.dtype is tinyfw.float32 and 0 <= npy(r).min() and npy(r).max() < 1
    n = tinyfw.randn(2000, dtype=tinyfw.float64)
    assert abs(npy(n).mean()) < 0.1 and abs(npy(n).std() - 1) < 0.1
    i = tinyfw.randint(3, 7, (500,))
    assert i.dtype is tinyfw.int64 and set(i.tolist()) == {3, 4, 5, 6}
    assert tinyfw.randint(5, size=(2, 2)).shape == (2, 2)
    p = tinyfw.randperm(10)
    assert sorted(p.tolist()) == list(range(10))
    assert tinyfw.rand(2, 3, requires_grad=True).requires_grad
    b = tinyfw.bernoulli(tinyfw.full((1000,), 0.3))
    assert set(b.tolist()) <= {0.0, 1.0} and 0.2 < npy(b).mean() < 0.4


def test_attributes():
    x = tinyfw.zeros(2, 3, 4, dtype=tinyfw.float16)
    assert x.shape == (2, 3, 4) and x.dtype is tinyfw.float16 and x.ndim == 3
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.numel() == 24
    assert x.device == DEVICE and str(x.device) == str(DEVICE)
    assert x.T.shape == (4, 3, 2) and x.element_size() == 2 and x.is_contiguous()
    assert len(x) == 2 and len(list(x)) == 2
    assert tinyfw.numel(x) == 24 and tinyfw.is_tensor(x) and not tinyfw.is_tensor(npy(x))


def test_item_tolist_and_python_conversions():
    assert tinyfw.tensor(2.5).item() == 2.5 and isinstance(tinyfw.tensor(2.5).item(), float)
    assert tinyfw.tensor([3]).item() == 3 and isinstance(tinyfw.tensor([3]).item(), int)
    assert tinyfw.tensor(True).item() is True
    assert tinyfw.tensor(1.5, dtype="bfloat16").item() == 1.5
    assert tinyfw.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert tinyfw.tensor([1.5], dtype="bfloat16").tolist() == [1.5]
    assert tinyfw.tensor(4).tolist() == 4
    assert float(tinyfw.tensor([2.0])) == 2.0 and int(tinyfw.tensor(7)) == 7
    assert bool(tinyfw.tensor([1])) is True
    assert [10, 20, 30][tinyfw.tensor(1)] == 20  # __index__


def test_numpy_requires_detach_for_grad_tensors():
    x = tinyfw.ones(2, requires_grad=True, device="cpu")  # numpy interop is the CPU's
    with pytest.raises(RuntimeError, match=r"requires grad; call \.detach\(\)\.numpy\(\)"):
        x.numpy()
    assert np.shares_memory(x.detach().numpy(), x._data)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64


@requires_torch
def test_repr_is_readable_and_torch_like():
    dev = "" if DEVICE.type == "cpu" else f", device='{DEVICE}'"  # as PyTorch prints cuda
    assert repr(tinyfw.tensor([1.0, 2.5])) == f"tensor([1.0000, 2.5000]{dev})"
    assert repr(tinyfw.tensor([1, 2])) == f"tensor([1, 2]{dev})"
    assert "dtype=tinyfw.float64" in repr(tinyfw.tensor([1.0], dtype="float64"))
    assert "requires_grad=True" in repr(tinyfw.ones(1, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(tinyfw.ones(1, requires_grad=True) * 2)
    assert "dtype=tinyfw.bfloat16" in repr(tinyfw.ones(2, dtype="bfloat16"))
    big = repr(tinyfw.zeros(10000))
    assert "..." in big and len(big) < 200  # summarised, not 10000 numbers
    assert repr(tinyfw.zeros(0, 2)).startswith("tensor([]")


@requires_torch
@pytest.mark.parametrize("method", ["float", "double", "half", "bfloat16", "int", "long", "bool"])
def test_conversions_vs_torch(method):
    a = np.array([[-1.7, 0.0, 2.5], [3.2, -0.4, 1.0]])
    x, p = tinyfw.tensor(a), torch.tensor(a)
    u, v = getattr(x, method)(), getattr(p, method)()
    assert u.dtype.name == str(v.dtype).split(".")[1]
    assert_close(u, v, u.dtype.name if u.dtype.is_floating_point else "int")


def test_to_forms_and_gradient_through_casts():
    x = tinyfw.tensor([1.5, 2.0], requires_grad=True)
    assert x.to(tinyfw.float64).dtype is tinyfw.float64
    assert x.to("float16").dtype is tinyfw.float16
    assert x.to(tinyfw.zeros(1, dtype=tinyfw.int32)).dtype is tinyfw.int32
    assert x.to(str(DEVICE)) is x and x.to(tinyfw.device(str(DEVICE)), tinyfw.float32) is x
    assert x.to(dtype=tinyfw.float32, copy=True) is not x
    assert x.type_as(tinyfw.zeros(1, dtype=tinyfw.float64)).dtype is tinyfw.float64
    y = (x.double() * 3).half().float().sum()
    y.backward()
    assert x.grad.dtype is tinyfw.float32 and x.grad.tolist() == [3.0, 3.0]
    if DEVICE.type == "cpu":
        assert x.cpu() is x
    else:
        assert x.cpu().device == tinyfw.device("cpu") and x.cpu().tolist() == [1.5, 2.0]


def test_devices():
    assert tinyfw.device("cpu") == "cpu" and tinyfw.device("cuda:1").index == 1
    with pytest.raises(RuntimeError, match="device 'cuda:0'.*CUDA backend is not available"):
        tinyfw.ones(2).to("cuda:0")
    with pytest.raises(RuntimeError, match="CUDA backend is not available"):
        tinyfw.zeros(2, device="cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tinyfw.ones(2).to("tpu")
    assert tinyfw.zeros(2, device="cpu").device == tinyfw.device("cpu")


def test_clone_and_deepcopy():
    import copy

    x = tinyfw.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not _same_memory(c, x) and c.grad_fn is not None
    c.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    d = copy.deepcopy(x)
    assert d.requires_grad and d.is_leaf and d.grad.tolist() == [1.0, 1.0]
    assert not _same_memory(d, x)


def test_default_dtype_switch():
    tinyfw.set_default_dtype(tinyfw.float64)
    try:
        assert tinyfw.tensor([1.0]).dtype is tinyfw.float64
        assert tinyfw.zeros(1).dtype is tinyfw.float64
        assert (tinyfw.tensor([1]) * 0.5).dtype is tinyfw.float64
    finally:
        tinyfw.set_default_dtype(tinyfw.float32)
    assert tinyfw.get_default_dtype() is tinyfw.float32


def test_backend_selection_in_code_and_by_environment():
    import subprocess
    import sys

    before = tinyfw.get_backend()
    try:
        for name in ("ref", "cpu"):
            tinyfw.set_backend(name)
            assert tinyfw.get_backend().__name__ == f"tinyfw.backend.{name}"
            x = tinyfw.tensor([1.0, 2.0], requires_grad=True)
            (x * x).sum().backward()
            assert x.grad.tolist() == [2.0, 4.0]
    finally:
        tinyfw.dispatch._B = before
    code = "import tinyfw; print(tinyfw.get_backend().__name__)"
    for name in ("ref", "cpu"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**__import__("os").environ, "TINYFW_BACKEND": name},
                             check=True, timeout=120).stdout.strip()
        assert out == f"tinyfw.backend.{name}"
