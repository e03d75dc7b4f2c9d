"""The CUDA backend on a machine without a GPU (where CI runs): the build switches, the
module's import without a driver, the reasons every entry point gives, and the pure
layout arithmetic of the backend's views (checked against numpy's)."""
from __future__ import annotations

import os
import runpy
import shutil

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from tinyfw.backend import cuda as B

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = runpy.run_path(os.path.join(ROOT, "tools", "cuda_build.py"))


def test_unavailable_is_reported_with_a_reason():
    if tinyfw.cuda.is_available():
        pytest.skip("a CUDA device is present: tests/test_cuda_device.py covers it")
    why = tinyfw.cuda.unavailable_reason()
    assert why and "CUDA" in why
    with pytest.raises(RuntimeError, match="not available"):
        tinyfw.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="not available"):
        tinyfw.ones(3).cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tinyfw.cuda.synchronize()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tinyfw.cuda.Stream()
    with pytest.raises(RuntimeError, match="not available"):
        tinyfw.memory.memory_allocated("cuda")
    assert tinyfw.cuda.device_count() == 0


def test_built_module_imports_without_a_driver():
    """Static cudart: tinyfw._cuda loads without libcuda and says why no device works."""
    try:
        import tinyfw._cuda as C
    except ModuleNotFoundError:
        pytest.skip("tinyfw._cuda is not built (TINYFW_CUDA=1 python setup.py build_ext --inplace)")
    if C.device_count():
        pytest.skip("a CUDA device is present")
    reason = C.unavailable_reason()
    assert reason  # e.g. cudaErrorInsufficientDriver / cudaErrorNoDevice
    assert "no usable CUDA device" in tinyfw.cuda.unavailable_reason()
    # the op tables the Python side looks kernels up in
    assert {"exp", "gelu_tanh", "clamp"} <= set(C.UNARY)
    assert {"add", "gelu_tanh_backward", "logical_xor"} <= set(C.BINARY)
    assert set(C.REDUCE) == {"sum", "prod", "amax", "amin", "any", "all"}
    assert C.MAX_DIMS >= 8


def _with_env(monkeypatch, **env):
    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    return BUILD["CudaBuild"].from_environment()


def test_build_switches(monkeypatch):
    assert _with_env(monkeypatch, TINYFW_CUDA="0") is None
    with pytest.raises(SystemExit, match="TINYFW_CUDA must be"):
        _with_env(monkeypatch, TINYFW_CUDA="yes")
    if shutil.which("nvcc") is None:
        monkeypatch.setenv("PATH", "")
        with pytest.raises(SystemExit, match="nvcc was not found"):
            _with_env(monkeypatch, TINYFW_CUDA="1", CUDA_HOME=None, CUDA_PATH=None)
        return
    b = _with_env(monkeypatch, TINYFW_CUDA="1", TINYFW_CUDA_ARCH=None)
    assert b.archs == ["80", "90"]
    assert "-gencode=arch=compute_80,code=sm_80" in b.flags
    assert "-gencode=arch=compute_90,code=compute_90" in b.flags  # PTX for newer GPUs
    assert os.path.isdir(os.path.join(b.top, "lib64")) or os.path.isdir(os.path.join(b.top, "targets"))
    assert _with_env(monkeypatch, TINYFW_CUDA="1", TINYFW_CUDA_ARCH="sm_90").archs == ["90"]
    with pytest.raises(SystemExit, match="TINYFW_CUDA_ARCH"):
        _with_env(monkeypatch, TINYFW_CUDA="1", TINYFW_CUDA_ARCH="hopper")


def test_objects_are_keyed_on_their_inputs(monkeypatch, tmp_path):
    """An object is rebuilt when its source, a cuda/ header or the flags change, and only then."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed")
    b = _with_env(monkeypatch, TINYFW_CUDA="1", TINYFW_CUDA_ARCH=None)
    monkeypatch.chdir(ROOT)
    k = b._key("cuda/copy.cu")
    assert k == b._key("cuda/copy.cu") and k != b._key("cuda/unary.cu")
    b.flags.append("-DX")
    assert b._key("cuda/copy.cu") != k


@st.composite
def strided(draw):
    """A numpy array with a random shape, transposition and steps, and a new shape of
    the same size."""
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    steps = [draw(st.integers(1, 2)) for _ in shape]
    base = np.zeros(tuple(n * s for n, s in zip(shape, steps)), np.float32)
    a = base[tuple(slice(None, None, s) for s in steps) + (Ellipsis,)]
    perm = draw(st.permutations(range(len(shape))))
    a = a.transpose(perm)
    n = a.size
    new = []
    rest = n
    for _ in range(draw(st.integers(0, 4))):
        f = draw(st.sampled_from([d for d in range(1, 5) if rest % d == 0] or [1])) if rest else draw(st.integers(0, 2))
        new.append(f)
        rest = rest // f if f else rest
    new.append(rest if n else 0)
    if n and np.prod(new) != n:
        new = [n]
    return a, tuple(new)


@given(strided())
def test_view_strides_match_numpy(case):
    """The backend's no-copy reshape rule gives numpy's answer: a view exactly when numpy
    can make one, with strides addressing the same elements."""
    a, new = case
    st_ = B._view_strides(a.shape, a.strides, new, a.itemsize)
    v = a.view()
    try:
        v.shape = new
    except AttributeError:
        assert st_ is None, f"{a.shape} {a.strides} -> {new}: numpy needs a copy, the backend viewed"
        return
    assert st_ is not None, f"{a.shape} {a.strides} -> {new}: numpy views, the backend did not"
    if a.size:  # the same addresses for every element (strides of size-1 dims are free)
        idx = np.indices(new).reshape(len(new), -1) if new else np.zeros((0, 1), int)
        mine = (np.asarray(st_)[:, None] * idx).sum(0) if new else np.zeros(1)
        theirs = (np.asarray(v.strides)[:, None] * idx).sum(0) if new else np.zeros(1)
        np.testing.assert_array_equal(mine, theirs)


def test_dataloader_pin_memory_without_cuda():
    """pin_memory=True is accepted and leaves batches as they are where CUDA is absent."""
    if tinyfw.cuda.is_available():
        pytest.skip("CUDA present: tests/test_cuda_device.py checks pinning")
    ds = tinyfw.data.TensorDataset(tinyfw.arange(6.0))
    batches = list(tinyfw.data.DataLoader(ds, batch_size=4, pin_memory=True))
    assert [b[0].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
