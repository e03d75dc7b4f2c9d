"""Shared test helpers: the optional PyTorch oracle and array comparisons."""
from __future__ import annotations

import io

import numpy as np
import pytest

import tinyfw

try:
    import torch
except ImportError:  # the oracle is optional; tests that need it skip
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch==2.13.0 for the oracle tests)")

# float32 results of one op agree to a few ulps; compositions and reductions need more
TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6), "float16": (1e-2, 1e-3),
       "bfloat16": (1e-2, 1e-2)}


#: the device the suite runs on (TINYFW_DEVICE: cpu by default, 'check' in CI's second run)
DEVICE = tinyfw.get_default_device()


def npy(t: tinyfw.Tensor) -> np.ndarray:
    """The values of a tinyfw tensor on any device as a numpy array (bfloat16 kept)."""
    return t.detach().cpu().numpy()


def from_np(a: np.ndarray) -> tinyfw.Tensor:
    """A tensor of host array `a` on the suite's device: on the CPU it shares a's memory and
    keeps its layout (strides, read-only views); elsewhere it is a row-major copy."""
    return tinyfw.from_numpy(a) if DEVICE.type == "cpu" else tinyfw.tensor(a)


def to_torch(t: tinyfw.Tensor, requires_grad: bool | None = None):
    """A torch tensor with the same values and dtype (bfloat16 included)."""
    a = npy(t)
    if t.dtype is tinyfw.bfloat16:
        out = torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    else:
        out = torch.from_numpy(np.array(a))
    rg = t.requires_grad if requires_grad is None else requires_grad
    return out.requires_grad_(rg) if rg else out


def to_numpy(x) -> np.ndarray:
    """numpy float64/int/bool values of a tinyfw or torch tensor (or array)."""
    if isinstance(x, tinyfw.Tensor):
        a = npy(x)
        return a.astype(np.float64) if a.dtype.kind == "V" or str(a.dtype) in ("bfloat16", "float16") else a
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def assert_close(actual, expected, dtype: str = "float32", rtol=None, atol=None, msg: str = ""):
    """Compare values (NaN equal to NaN) with the dtype's default tolerance."""
    r, a = TOL.get(dtype, (0, 0))
    a_np, e_np = to_numpy(actual), to_numpy(expected)
    assert a_np.shape == e_np.shape, f"{msg}: shape {a_np.shape} vs {e_np.shape}"
    np.testing.assert_allclose(a_np.astype(np.float64) if a_np.dtype != bool else a_np,
                               e_np.astype(np.float64) if e_np.dtype != bool else e_np,
                               rtol=r if rtol is None else rtol, atol=a if atol is None else atol,
                               equal_nan=True, err_msg=msg)


def in_layout(base: np.ndarray, how: str) -> np.ndarray:
    """An array equal to `base` in the memory layout `how`: contiguous, transposed (F order in
    the last two dims), stepped (every other element of a bigger buffer), reversed (negative
    strides), or expanded (its first row repeated by a 0 stride, read-only)."""
    if how == "transposed" and base.ndim >= 2:
        return np.ascontiguousarray(base.swapaxes(-1, -2)).swapaxes(-1, -2)
    if how == "stepped" and base.ndim >= 1:
        big = np.zeros(tuple(2 * s for s in base.shape), base.dtype)
        v = big[tuple(slice(None, None, 2) for _ in base.shape)]
        v[...] = base
        return v
    if how == "reversed" and base.ndim >= 1:
        return np.ascontiguousarray(base[..., ::-1])[..., ::-1]
    if how == "expanded" and base.ndim >= 1 and base.shape[0] > 0:
        return np.broadcast_to(base[:1], base.shape)  # read-only, stride 0
    return base


def explain_text(fn, *args) -> str:
    """What `tinyfw.jit.explain(fn, *args)` reports, without printing it."""
    return tinyfw.jit.explain(fn, *args, file=io.StringIO())
