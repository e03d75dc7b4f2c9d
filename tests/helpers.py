"""Shared test helpers: the optional PyTorch oracle and array comparisons."""
from __future__ import annotations

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


def to_torch(t: tinyfw.Tensor, requires_grad: bool | None = None):
    """A torch tensor with the same values and dtype (bfloat16 included)."""
    a = t.detach()._data
    if t.dtype is tinyfw.bfloat16:
        out = torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    else:
        out = torch.from_numpy(np.array(a))
    rg = t.requires_grad if requires_grad is None else requires_grad
    return out.requires_grad_(rg) if rg else out


def to_numpy(x) -> np.ndarray:
    """numpy float64/int/bool values of a tinyfw or torch tensor (or array)."""
    if isinstance(x, tinyfw.Tensor):
        a = x.detach()._data
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
