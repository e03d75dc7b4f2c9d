"""Issue 16: F.grouped_mm's four shape cases against PyTorch's forward (its CPU kernel
needs 16-byte-aligned strides: sizes are multiples of 4 here, and it has no backward:
tinyfw's gradients are checked by gradcheck) and against a per-group model."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch

I32 = np.int32


def _cases(rng):
    return [
        ("3d-3d", rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 8, 4)), None),
        ("2d-3d", rng.standard_normal((16, 8)), rng.standard_normal((3, 8, 4)),
         np.array([3, 3, 12], I32)),  # an empty group, and 4 trailing rows past offs[-1]
        ("2d-2d", rng.standard_normal((4, 16)), rng.standard_normal((16, 8)),
         np.array([4, 16], I32)),
        ("3d-2d", rng.standard_normal((2, 4, 8)), rng.standard_normal((8, 16)),
         np.array([8, 16], I32)),
    ]


@requires_torch
@pytest.mark.parametrize("which", range(4))
def test_grouped_mm_matches_torch_forward(which):
    name, a, b, offs = _cases(np.random.default_rng(0))[which]
    kw_f = {} if offs is None else {"offs": tinyfw.tensor(offs)}
    kw_t = {} if offs is None else {"offs": torch.from_numpy(offs)}
    got = F.grouped_mm(tinyfw.tensor(a, dtype=tinyfw.float32), tinyfw.tensor(b, dtype=tinyfw.float32), **kw_f)
    want = torch.nn.functional.grouped_mm(torch.from_numpy(a).float(), torch.from_numpy(b).float(), **kw_t)
    if name == "2d-3d":  # torch leaves the rows past offs[-1] unspecified; tinyfw zeroes them
        assert not npy(got)[12:].any()
        got, want = got[:12], want[:12]
    assert_close(got, want, "float32", rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("which", range(4))
def test_grouped_mm_gradients_are_the_derivative(which):
    name, a, b, offs = _cases(np.random.default_rng(1))[which]
    a, b = a[..., :4, :] if a.ndim == 3 else a, b  # keep the Jacobians small
    ta = tinyfw.tensor(a, requires_grad=True)
    tb = tinyfw.tensor(b, requires_grad=True)
    kw = {} if offs is None else {"offs": tinyfw.tensor(offs)}
    assert tinyfw.gradcheck(lambda x, y: F.grouped_mm(x, y, **kw), [ta, tb])


def test_grouped_mm_bias_out_dtype_and_errors():
    a, b = tinyfw.randn(2, 3, 4), tinyfw.randn(2, 4, 5)
    out = F.grouped_mm(a, b, bias=tinyfw.ones(5), out_dtype=tinyfw.float64)
    assert out.dtype is tinyfw.float64
    np.testing.assert_allclose(npy(out), npy(a) @ npy(b) + 1, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="offs is needed"):
        F.grouped_mm(tinyfw.randn(6, 4), b)
    with pytest.raises(ValueError, match="do not contract"):
        F.grouped_mm(a, tinyfw.randn(2, 3, 5))
    with pytest.raises(ValueError, match="2 entries for 3 groups"):
        F.grouped_mm(tinyfw.randn(6, 4), tinyfw.randn(3, 4, 5), offs=tinyfw.tensor([2, 6]))
    with pytest.raises(ValueError, match="non-decreasing"):
        F.grouped_mm(tinyfw.randn(6, 4), tinyfw.randn(2, 4, 5), offs=tinyfw.tensor([4, 2]))
