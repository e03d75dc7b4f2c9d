"""Issue 16: group / instance / RMS / local-response normalisation, functional (three ways,
tests/op_table.py) and as modules against PyTorch with the same weights and buffers."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check, normal

TF = torch.nn.functional if torch is not None else None

CASES = [
    OpCase("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b),
           lambda x, w, b: TF.group_norm(x, 2, w, b), normal((3, 4, 5), (4,), (4,)),
           terms=10, gradgrad=True),
    OpCase("group_norm-noaffine-4d", lambda x: F.group_norm(x, 3, eps=1e-3),
           lambda x: TF.group_norm(x, 3, eps=1e-3), normal((2, 6, 3, 2)), terms=12),
    OpCase("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
           lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), normal((3, 4, 5), (4,), (4,)),
           terms=5, gradgrad=True),
    OpCase("instance_norm-3d", lambda x: F.instance_norm(x), lambda x: TF.instance_norm(x),
           normal((2, 3, 2, 3, 2)), terms=12),
    OpCase("instance_norm-running", lambda x, m, v: F.instance_norm(x, m, v, use_input_stats=False),
           lambda x, m, v: TF.instance_norm(x, m, v, use_input_stats=False),
           lambda rng, dt: [rng.standard_normal((2, 3, 4)).astype(dt),
                            rng.standard_normal(3).astype(dt), rng.uniform(0.5, 2, 3).astype(dt)],
           frozen=(1, 2)),
    OpCase("rms_norm", lambda x, w: F.rms_norm(x, (5,), w), lambda x, w: TF.rms_norm(x, (5,), w),
           normal((3, 4, 5), (5,)), terms=5, gradgrad=True),
    OpCase("rms_norm-2dims-eps", lambda x: F.rms_norm(x, (4, 5), eps=1e-3),
           lambda x: TF.rms_norm(x, (4, 5), eps=1e-3), normal((3, 4, 5)), terms=20, gradgrad=True),
    OpCase("local_response_norm", lambda x: F.local_response_norm(x, 3, alpha=0.5, k=2.0),
           lambda x: TF.local_response_norm(x, 3, alpha=0.5, k=2.0), normal((2, 6, 4)),
           terms=3, gradgrad=True),
    OpCase("local_response_norm-even-4d", lambda x: F.local_response_norm(x, 4, alpha=0.3, beta=0.5),
           lambda x: TF.local_response_norm(x, 4, alpha=0.3, beta=0.5), normal((2, 5, 3, 2)),
           terms=4),
    OpCase("local_response_norm-5d", lambda x: F.local_response_norm(x, 2, alpha=0.2),
           lambda x: TF.local_response_norm(x, 2, alpha=0.2), normal((1, 4, 2, 2, 3)), terms=2),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def test_rms_norm_default_eps_is_the_dtypes_epsilon():
    x = tinyfw.zeros(2, 3)
    x32 = F.rms_norm(x + 1e-30, (3,))  # the mean square underflows: eps decides the scale
    assert np.allclose(npy(x32), 1e-30 / np.sqrt(np.float32(2.0 ** -23)), rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("affine,track", [(False, False), (True, True)])
def test_instance_norm_modules_match_torch_and_update_running_stats(affine, track):
    rng = np.random.default_rng(0)
    for tcls, fcls, shape in [(torch.nn.InstanceNorm1d, tinyfw.nn.InstanceNorm1d, (3, 4, 6)),
                              (torch.nn.InstanceNorm2d, tinyfw.nn.InstanceNorm2d, (2, 4, 3, 3)),
                              (torch.nn.InstanceNorm3d, tinyfw.nn.InstanceNorm3d, (2, 4, 2, 3, 2))]:
        tm = tcls(4, affine=affine, track_running_stats=track).double()
        fm = fcls(4, affine=affine, track_running_stats=track).to(tinyfw.float64)
        compare(tm, fm, [rng.standard_normal(shape)], dtype="float64")
        if track:
            assert_close(fm.running_mean, tm.running_mean, "float64")
            assert_close(fm.running_var, tm.running_var, "float64")
            tm.eval()
            fm.eval()
            compare(tm, fm, [rng.standard_normal(shape)], dtype="float64", copy=False)
        unbatched = rng.standard_normal(shape[1:])
        compare(tm.eval(), fm.eval(), [unbatched], dtype="float64", copy=False)


@requires_torch
def test_group_rms_lrn_batchnorm3d_modules_match_torch():
    rng = np.random.default_rng(1)
    pairs = [
        (torch.nn.GroupNorm(2, 6), tinyfw.nn.GroupNorm(2, 6), (3, 6, 4)),
        (torch.nn.GroupNorm(3, 6, affine=False), tinyfw.nn.GroupNorm(3, 6, affine=False), (2, 6, 2, 2)),
        (torch.nn.RMSNorm([3, 4]), tinyfw.nn.RMSNorm([3, 4]), (2, 3, 4)),
        (torch.nn.RMSNorm(4, eps=1e-4, elementwise_affine=False),
         tinyfw.nn.RMSNorm(4, eps=1e-4, elementwise_affine=False), (5, 4)),
        (torch.nn.LocalResponseNorm(3), tinyfw.nn.LocalResponseNorm(3), (2, 5, 3, 3)),
        (torch.nn.BatchNorm3d(3), tinyfw.nn.BatchNorm3d(3), (2, 3, 2, 2, 3)),
    ]
    for tm, fm, shape in pairs:
        tm.double()
        fm.to(tinyfw.float64)
        compare(tm, fm, [rng.standard_normal(shape)], dtype="float64")
        assert list(fm.state_dict()) == list(tm.state_dict()), type(fm).__name__


def _cross_map_model(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    # the symmetric window [c - h, c + h], h = (size - 1) // 2, written out in float64
    h = (size - 1) // 2
    c = x.shape[1]
    sq = x.astype(np.float64) ** 2
    scale = np.stack([sq[:, max(0, j - h):min(c, j + h + 1)].sum(1) for j in range(c)], 1)
    return x * (k + alpha / size * scale) ** -beta


@pytest.mark.parametrize("size", [3, 4, 5])
def test_cross_map_lrn2d_uses_the_symmetric_window(size):
    x = np.random.default_rng(2).standard_normal((2, 7, 3, 2))
    got = tinyfw.nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.0)(tinyfw.tensor(x))
    np.testing.assert_allclose(npy(got), _cross_map_model(x, size, 0.5, 0.75, 1.0), rtol=1e-13)
    leaf = tinyfw.tensor(x[:1, :, :1, :1], requires_grad=True)
    assert tinyfw.gradcheck(lambda t: tinyfw.nn.CrossMapLRN2d(size, 0.5, 0.75, 1.0)(t), [leaf])


@requires_torch
@pytest.mark.parametrize("size", [3, 5])
def test_cross_map_lrn2d_matches_torch_where_its_forward_is_the_window(size):
    # torch's forward keeps channel 0 in the windows past channel h + 1, and its hand-written
    # backward sums an off-centre window (torch's own gradcheck fails on it): see
    # docs/semantics.md.  With at most h + 1 channels its forward is the symmetric window;
    # tinyfw's gradient is the derivative (gradcheck, above)
    h = (size - 1) // 2
    x = np.random.default_rng(3).standard_normal((2, h + 1, 3, 2))
    compare(torch.nn.CrossMapLRN2d(size, 0.5, 0.75, 1.0), tinyfw.nn.CrossMapLRN2d(size, 0.5, 0.75, 1.0),
            [x], dtype="float64", copy=False, backward=False)


def test_norm_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="not divisible into num_groups=4"):
        F.group_norm(tinyfw.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match="divisible by num_groups 4"):
        tinyfw.nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(tinyfw.randn(2, 3, 1))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.rms_norm(tinyfw.randn(2, 3), (4,))
    with pytest.raises(ValueError, match="3D or higher"):
        F.local_response_norm(tinyfw.randn(2, 3), 2)
    with pytest.raises(ValueError, match="expected 3D .unbatched. or 4D"):
        tinyfw.nn.InstanceNorm2d(3)(tinyfw.randn(3, 3))
