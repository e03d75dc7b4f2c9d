"""The torch.* / Tensor spellings of the linear-algebra ops (tinyfw/ops/linalg_more.py)
against PyTorch, three ways (tests/op_table.py); inputs from linalg_inputs.py."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from linalg_inputs import sign_fix, spd, system, wellcond, wellcond_arr
from op_table import KINDS, OpCase, case_id, check, normal
from helpers import torch

# PyTorch's legacy spellings (torch.lu, torch.qr, cross without dim ...) warn that they are
# deprecated; they are the API under test
pytestmark = pytest.mark.filterwarnings("ignore:.*(deprecated|dim arg).*:UserWarning")


def _both(name, fn, inputs, **kw):
    return OpCase(name, lambda *a: fn(tinyfw, *a), lambda *a: fn(torch, *a), inputs, **kw)


def _method(name, fn, inputs, **kw):
    """The Tensor-method spelling: fn gets the first input and the rest."""
    return OpCase(name, fn, fn, inputs, **kw)


def _svd_legacy(some):
    def f(A):
        U, S, V = A.svd(some=some)
        k = S.shape[-1]
        U, V = U[..., :, :k], V[..., :, :k]
        s = U.detach().sum(-2, keepdim=True).sign()
        return U * s, S, V * s
    return f


def _chol(lib, A, upper=False):
    """A Cholesky factor of the symmetric part of A (the input recipe makes it SPD)."""
    return lib.linalg.cholesky((A + A.mT) / 2, upper=upper)


def _geqrf_inputs(rng, dtype):
    """geqrf's (a, tau) of a well-conditioned matrix, computed by numpy (LAPACK)."""
    a = wellcond_arr(rng, (2, 4, 3))
    h, tau = np.linalg.qr(a, mode="raw")
    return [np.ascontiguousarray(np.swapaxes(h, -1, -2)).astype(dtype), tau.astype(dtype),
            rng.standard_normal((2, 4, 2)).astype(dtype)]


CASES = [
    _both("addmm", lambda lib, i, a, b: lib.addmm(i, a, b, beta=0.5, alpha=2.0),
          normal((3, 1), (3, 4), (4, 2)), terms=4),
    _method("Tensor.addmm", lambda i, a, b: i.addmm(a, b), normal((3, 2), (3, 4), (4, 2)),
            terms=4),
    _both("addmm_beta0", lambda lib, i, a, b: lib.addmm(i, a, b, beta=0),
          normal((3, 2), (3, 4), (4, 2)), terms=4),
    _both("addbmm", lambda lib, i, a, b: lib.addbmm(i, a, b, alpha=-1.0),
          normal((3, 2), (5, 3, 4), (5, 4, 2)), terms=20),
    _both("baddbmm", lambda lib, i, a, b: lib.baddbmm(i, a, b, beta=2.0),
          normal((5, 1, 2), (5, 3, 4), (5, 4, 2)), terms=4),
    _both("addmv", lambda lib, i, m, v: lib.addmv(i, m, v, beta=0.5), normal((3,), (3, 4), (4,)),
          terms=4),
    _method("addmv_", lambda i, m, v: (i * 1).addmv_(m, v, alpha=3.0),
            normal((3,), (3, 4), (4,)), terms=4),
    _both("addr", lambda lib, i, a, b: lib.addr(i, a, b, beta=-1.0, alpha=0.5),
          normal((3, 4), (3,), (4,))),
    _both("mv", lambda lib, m, v: lib.mv(m, v), normal((3, 4), (4,)), terms=4),
    _both("ger", lambda lib, a, b: lib.ger(a, b), normal((3,), (4,))),
    _both("inner", lambda lib, a, b: lib.inner(a, b), normal((2, 3, 4), (5, 4)), terms=4),
    _both("inner_scalar", lambda lib, a, b: lib.inner(a, b), normal((), (2, 3))),
    _both("vdot", lambda lib, a, b: lib.vdot(a, b), normal((5,), (5,)), terms=5),
    _both("cross", lambda lib, a, b: lib.cross(a, b, dim=1), normal((2, 3), (2, 3))),
    _both("cross_default_dim", lambda lib, a, b: lib.cross(a, b), normal((4, 3, 3), (4, 3, 3))),
    _method("Tensor.cross", lambda a, b: a.cross(b, dim=-1), normal((4, 3), (4, 3))),
    _both("det", lambda lib, A: lib.det(A), wellcond(2, 3, 3), terms=9),
    _method("Tensor.det", lambda A: A.det(), wellcond(3, 3), terms=9),
    _both("logdet", lambda lib, A: lib.logdet(A), wellcond(2, 3, 3), terms=9,
          kinds=("torch64", "torch32", "ref")),
    _both("logdet_spd", lambda lib, A: lib.logdet((A + A.mT) / 2), spd(2, 3, 3), terms=9),
    _method("Tensor.slogdet", lambda A: A.slogdet()[1], wellcond(3, 3), terms=9),
    _both("inverse", lambda lib, A: lib.inverse(A), wellcond(2, 3, 3), terms=9),
    _method("Tensor.inverse", lambda A: A.inverse(), wellcond(3, 3), terms=9),
    _both("cholesky", lambda lib, A: lib.cholesky((A + A.mT) / 2), spd(3, 3), terms=9),
    _method("Tensor.cholesky", lambda A: ((A + A.mT) / 2).cholesky(upper=True), spd(3, 3),
            terms=9),
    _both("cholesky_inverse", lambda lib, A: lib.cholesky_inverse(_chol(lib, A)),
          spd(2, 3, 3), terms=27, gradgrad=True),
    _both("cholesky_inverse_upper",
          lambda lib, A: lib.cholesky_inverse(_chol(lib, A, True), upper=True),
          spd(3, 3), terms=27),
    _both("cholesky_solve", lambda lib, A, B: lib.cholesky_solve(B, _chol(lib, A)),
          lambda rng, dt: spd(2, 3, 3)(rng, dt) + [rng.standard_normal((2, 3, 2)).astype(dt)],
          terms=27, gradgrad=True),
    _method("Tensor.cholesky_solve",
            lambda B, A: B.cholesky_solve(((A + A.mT) / 2).cholesky(upper=True), upper=True),
            lambda rng, dt: [rng.standard_normal((3, 2)).astype(dt)] + spd(3, 3)(rng, dt),
            terms=27),
    _both("lu", lambda lib, A: lib.lu(A)[0], wellcond(2, 3, 3), terms=9),
    _method("Tensor.lu_solve", lambda A, B: B.lu_solve(*A.lu()), system((2, 3, 3), (2, 3, 2)),
            terms=9),
    _both("lu_solve", lambda lib, A, B: lib.lu_solve(B, *lib.lu(A)), system((3, 3), (3, 2)),
          terms=9),
    _both("qr", lambda lib, A: lib.qr(A), wellcond(2, 4, 3), terms=12),
    _method("Tensor.qr_complete", lambda A: A.qr(some=False), wellcond(3, 3), terms=9),
    _method("svd", _svd_legacy(True), wellcond(2, 4, 3), terms=12),
    _method("svd_full", _svd_legacy(False), wellcond(3, 4), terms=12),
    _both("svd_no_uv", lambda lib, A: lib.svd(A, compute_uv=False), wellcond(4, 3), terms=12),
    _both("pinverse", lambda lib, A: lib.pinverse(A), wellcond(2, 4, 3), terms=12),
    _both("matrix_power", lambda lib, A: lib.matrix_power(A, 4), normal((2, 3, 3)), terms=27),
    _method("Tensor.matrix_power_neg", lambda A: A.matrix_power(-1), wellcond(3, 3), terms=9),
    _both("matrix_exp", lambda lib, A: lib.matrix_exp(A), normal((3, 3)), terms=64),
    _method("Tensor.matrix_exp", lambda A: A.matrix_exp(), normal((2, 2, 2)), terms=64),
    _both("triangular_solve", lambda lib, b, A: lib.triangular_solve(
        b, A.triu() + 3 * lib.eye(3, dtype=A.dtype)), normal((2, 3, 2), (3, 3)), terms=9),
    _method("triangular_solve_transpose_unit", lambda b, A: b.triangular_solve(
        A, upper=False, transpose=True, unitriangular=True)[0], normal((3, 2), (2, 3, 3)),
        terms=9, gradgrad=True),
    _both("geqrf", lambda lib, A: lib.geqrf(A), wellcond(2, 4, 3), terms=12, grad=False),
    _both("orgqr", lambda lib, a, tau, c: lib.orgqr(a, tau), _geqrf_inputs, terms=12,
          frozen=(2,), gradgrad=True),
    _both("ormqr", lambda lib, a, tau, c: lib.ormqr(a, tau, c), _geqrf_inputs, terms=12),
    _both("ormqr_right_transpose", lambda lib, a, tau, c: lib.ormqr(
        a, tau, c.mT, left=False, transpose=True), _geqrf_inputs, terms=12),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_linalg_op(case, kind):
    check(case, kind)


def test_every_name_is_a_function_and_a_method():
    names = tinyfw.ops.linalg_more.__all__
    missing = [n for n in names if not (hasattr(tinyfw, n) and hasattr(tinyfw.Tensor, n))]
    assert not missing
