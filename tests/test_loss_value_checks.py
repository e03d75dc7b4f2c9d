"""binary_cross_entropy refuses probabilities outside [0, 1] in its input and its target
exactly where PyTorch does (issue 14, item 8): NaN, infinities, the nearest values
outside the interval; and gives PyTorch's loss on the boundary values it accepts.

PyTorch raises RuntimeError; tinyfw raises ValueError, as for every invalid argument
value (docs/semantics.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, requires_torch, torch

# the boundaries, the nearest float32 values beyond them, and the IEEE specials
VALUES = [0.0, -0.0, 1.0, 0.5, 1e-30, float(np.nextafter(np.float32(0), np.float32(-1))),
          float(np.nextafter(np.float32(1), np.float32(2))), 2.0, -0.5, math.inf, -math.inf,
          math.nan]


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["input", "target"])
@pytest.mark.parametrize("v", VALUES, ids=[repr(v) for v in VALUES])
def test_bce_accepts_and_refuses_what_pytorch_does(v, which, dtype):
    ok, bad = [0.25, 0.75], [0.25, v]
    x, t = (bad, ok) if which == "input" else (ok, bad)
    tx = torch.tensor(x, dtype=getattr(torch, dtype))
    tt = torch.tensor(t, dtype=getattr(torch, dtype))
    try:
        want = torch.nn.functional.binary_cross_entropy(tx, tt, reduction="none")
    except RuntimeError as e:
        assert f"all elements of {which} should be between 0 and 1" in str(e)
        want = None
    dt = getattr(tinyfw, dtype)
    call = lambda: F.binary_cross_entropy(tinyfw.tensor(x, dtype=dt), tinyfw.tensor(t, dtype=dt),
                                          reduction="none")
    if want is None:
        with pytest.raises(ValueError, match=f"all elements of {which} .* must lie in \\[0, 1\\]"):
            call()
    else:
        assert_close(call(), want, dtype)


def test_bce_checks_an_integer_target_after_converting_it():
    x = tinyfw.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match=r"all elements of target \(shape \(2,\)\)"):
        F.binary_cross_entropy(x, tinyfw.tensor([0, 2]))  # an int target becomes float
    loss = F.binary_cross_entropy(x, tinyfw.tensor([0, 1]))
    assert abs(loss.item() - math.log(2)) < 1e-6
