"""tinyfw.linalg against torch.linalg, three ways (tests/op_table.py): forward and backward
in float64 and float32, float64 gradcheck (and gradgradcheck: the backward formulas are
tinyfw ops), and the active backend against ref.  Inputs come from linalg_inputs.py
(condition numbers <= 3); float32 tolerances widen with `terms` = the number of rounded
operations an entry accumulates through a factorization and its backward (~n^2 for an
n x n solve, plus the backward's second solve)."""
from __future__ import annotations

import pytest

import tinyfw
from linalg_inputs import sign_fix, spd, sym, system, wellcond
from op_table import KINDS, OpCase, case_id, check, normal
from helpers import torch

L = tinyfw.linalg
TL = torch.linalg if torch is not None else None


def _sym(A):
    """Both libraries read one triangle of a symmetric input: differentiate through the
    symmetric part so that finite differences and both gradients agree."""
    return (A + A.mT) / 2


def _eigh(lib):
    def f(A, UPLO="L"):
        w, V = lib.linalg.eigh(_sym(A), UPLO=UPLO)
        return w, sign_fix(V)
    return f


def _svd(lib, full):
    def f(A):
        U, S, Vh = lib.linalg.svd(A, full_matrices=full)
        k = S.shape[-1]
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        s = U.detach().sum(-2, keepdim=True).sign()
        return U * s, S, Vh * s.mT
    return f


def _qr(lib, mode="reduced"):
    def f(A):
        Q, R = lib.linalg.qr(A, mode=mode)
        return Q, R
    return f


def _lu(lib):
    def f(A):
        P, Lw, U = lib.linalg.lu(A)
        return Lw, U
    return f


def _both(name, fn, inputs, **kw):
    """A case whose tinyfw and torch calls are the same expression over the library."""
    return OpCase(name, lambda *a: fn(tinyfw, *a), lambda *a: fn(torch, *a), inputs, **kw)


CASES = [
    _both("inv", lambda lib, A: lib.linalg.inv(A), wellcond(2, 4, 4), terms=16, gradgrad=True),
    _both("inv_ex", lambda lib, A: lib.linalg.inv_ex(A)[0], wellcond(3, 3), terms=9),
    _both("det", lambda lib, A: lib.linalg.det(A), wellcond(2, 3, 3), terms=9, gradgrad=True),
    _both("det_neg", lambda lib, A: lib.linalg.det(-A), wellcond(4, 4), terms=16),
    # PyTorch's sign requires grad (its gradient is 0); tinyfw's is an integer-like aux output
    _both("slogdet", lambda lib, A: (lambda s, l: (s.detach(), l))(*lib.linalg.slogdet(-A)),
          wellcond(2, 3, 3), terms=9, kinds=("torch64", "torch32", "ref")),
    _both("slogdet_logabsdet", lambda lib, A: lib.linalg.slogdet(A)[1], wellcond(2, 3, 3),
          terms=9, gradgrad=True),
    _both("solve", lambda lib, A, B: lib.linalg.solve(A, B), system((2, 3, 3), (2, 3, 2)),
          terms=9, gradgrad=True),
    _both("solve_vector", lambda lib, A, B: lib.linalg.solve(A, B), system((2, 3, 3), (2, 3)),
          terms=9),
    _both("solve_broadcast", lambda lib, A, B: lib.linalg.solve(A, B),
          system((3, 3), (2, 3, 2)), terms=9),
    _both("solve_right", lambda lib, A, B: lib.linalg.solve(A, B, left=False),
          system((3, 3), (2, 3)), terms=9),
    _both("solve_ex", lambda lib, A, B: lib.linalg.solve_ex(A, B)[0], system((3, 3), (3, 1)),
          terms=9),
    _both("solve_triangular_upper",
          lambda lib, A, B: lib.linalg.solve_triangular(A.triu() + 3 * lib.eye(3, dtype=A.dtype),
                                                        B, upper=True),
          normal((2, 3, 3), (2, 3, 2)), terms=9, gradgrad=True),
    _both("solve_triangular_lower_unit_right",
          lambda lib, A, B: lib.linalg.solve_triangular(A, B, upper=False, left=False,
                                                        unitriangular=True),
          normal((3, 3), (2, 3)), terms=9, gradgrad=True),
    _both("cholesky", lambda lib, A: lib.linalg.cholesky(_sym(A)), spd(2, 4, 4), terms=16,
          gradgrad=True),
    _both("cholesky_upper", lambda lib, A: lib.linalg.cholesky(_sym(A), upper=True),
          spd(3, 3), terms=9),
    _both("cholesky_ex", lambda lib, A: lib.linalg.cholesky_ex(_sym(A))[0], spd(3, 3), terms=9),
    _both("lu_factor", lambda lib, A: lib.linalg.lu_factor(A)[0], wellcond(2, 4, 4), terms=16,
          gradgrad=True),
    _both("lu_factor_ex", lambda lib, A: lib.linalg.lu_factor_ex(A)[0], wellcond(3, 3), terms=9),
    OpCase("lu_square", _lu(tinyfw), _lu(torch), wellcond(3, 3), terms=9),
    OpCase("lu_tall", _lu(tinyfw), _lu(torch), wellcond(2, 5, 3), terms=15, gradgrad=True),
    OpCase("lu_wide", _lu(tinyfw), _lu(torch), wellcond(3, 5), terms=15, gradgrad=True),
    _both("lu_solve", lambda lib, A, B: lib.linalg.lu_solve(*lib.linalg.lu_factor(A), B),
          system((2, 3, 3), (2, 3, 2)), terms=9, gradgrad=True),
    _both("lu_solve_adjoint_right",
          lambda lib, A, B: lib.linalg.lu_solve(*lib.linalg.lu_factor(A), B, left=False,
                                                adjoint=True),
          system((3, 3), (2, 3)), terms=9),
    OpCase("eigh", _eigh(tinyfw), _eigh(torch), sym(2, 4, 4), terms=16, gradgrad=True),
    OpCase("eigh_upper", lambda A: _eigh(tinyfw)(A, "U"), lambda A: _eigh(torch)(A, "U"),
           sym(3, 3), terms=9),
    _both("eigvalsh", lambda lib, A: lib.linalg.eigvalsh(_sym(A)), sym(2, 3, 3), terms=9,
          gradgrad=True),
    OpCase("svd_square", _svd(tinyfw, False), _svd(torch, False), wellcond(2, 3, 3), terms=9,
           gradgrad=True),
    OpCase("svd_tall", _svd(tinyfw, False), _svd(torch, False), wellcond(5, 3), terms=15,
           gradgrad=True),
    OpCase("svd_wide_full", _svd(tinyfw, True), _svd(torch, True), wellcond(2, 3, 5),
           terms=15),
    _both("svdvals", lambda lib, A: lib.linalg.svdvals(A), wellcond(2, 4, 3), terms=12,
          gradgrad=True),
    OpCase("qr_tall", _qr(tinyfw), _qr(torch), wellcond(2, 5, 3), terms=15, gradgrad=True),
    OpCase("qr_square", _qr(tinyfw), _qr(torch), wellcond(3, 3), terms=9),
    OpCase("qr_wide", _qr(tinyfw), _qr(torch), wellcond(2, 3, 5), terms=15, gradgrad=True),
    OpCase("qr_complete_square", _qr(tinyfw, "complete"), _qr(torch, "complete"),
           wellcond(3, 3), terms=9),
    _both("qr_r", lambda lib, A: lib.linalg.qr(A, mode="r")[1], wellcond(4, 3), terms=12,
          grad=False),
    _both("pinv", lambda lib, A: lib.linalg.pinv(A), wellcond(2, 4, 3), terms=12,
          gradgrad=True),
    _both("pinv_hermitian", lambda lib, A: lib.linalg.pinv(_sym(A), hermitian=True),
          sym(3, 3), terms=9),
    _both("matrix_rank", lambda lib, A: lib.linalg.matrix_rank(A), wellcond(2, 4, 3),
          grad=False),
    _both("cond", lambda lib, A: lib.linalg.cond(A), wellcond(2, 3, 3), terms=9),
    # PyTorch's cond for these orders writes into its inv_ex result in place and cannot
    # differentiate: compared forward here, the gradient comes from gradcheck
    _both("cond_fro", lambda lib, A: lib.linalg.cond(A, "fro").detach(), wellcond(3, 3),
          terms=9, kinds=("torch64", "torch32", "ref")),
    _both("cond_fro_grad", lambda lib, A: lib.linalg.cond(A, "fro"), wellcond(3, 3), terms=9,
          kinds=("gradcheck",)),
    _both("cond_inf", lambda lib, A: lib.linalg.cond(A, float("inf")).detach(), wellcond(3, 3),
          terms=9, kinds=("torch64", "torch32", "ref")),
    _both("matrix_exp", lambda lib, A: lib.linalg.matrix_exp(A), normal((2, 3, 3)), terms=64,
          gradgrad=True),
    _both("matrix_exp_big", lambda lib, A: lib.linalg.matrix_exp(3 * A), normal((3, 3)),
          terms=256),
    _both("matrix_power_3", lambda lib, A: lib.linalg.matrix_power(A, 3), normal((2, 3, 3)),
          terms=9, gradgrad=True),
    _both("matrix_power_neg", lambda lib, A: lib.linalg.matrix_power(A, -2), wellcond(3, 3),
          terms=9),
    _both("householder_product",
          lambda lib, A, tau: lib.linalg.householder_product(A, tau),
          normal((2, 4, 3), (2, 2)), terms=12, gradgrad=True),
    _both("lstsq_tall", lambda lib, A, B: lib.linalg.lstsq(A, B).solution,
          system((2, 5, 3), (2, 5, 2)), terms=15, gradgrad=True),
    _both("lstsq_wide", lambda lib, A, B: lib.linalg.lstsq(A, B).solution,
          system((3, 5), (3, 2)), terms=15),
    _both("tensorinv", lambda lib, A: lib.linalg.tensorinv(A.reshape(2, 3, 6), ind=2),
          wellcond(6, 6), terms=36),
    _both("tensorsolve", lambda lib, A, B: lib.linalg.tensorsolve(A.reshape(2, 3, 6), B),
          system((6, 6), (2, 3)), terms=36),
    _both("vector_norm", lambda lib, x: lib.linalg.vector_norm(x), normal((3, 4))),
    _both("vector_norm_ord3_dim", lambda lib, x: lib.linalg.vector_norm(x, 3, dim=1,
                                                                         keepdim=True),
          normal((3, 4))),
    _both("vector_norm_inf", lambda lib, x: lib.linalg.vector_norm(x, float("inf"), dim=(0,)),
          normal((3, 4))),
    _both("vector_norm_neg1", lambda lib, x: lib.linalg.vector_norm(x, -1, dim=-1),
          normal((3, 4))),
    _both("matrix_norm_fro", lambda lib, A: lib.linalg.matrix_norm(A), normal((2, 3, 4))),
    _both("matrix_norm_nuc", lambda lib, A: lib.linalg.matrix_norm(A, "nuc"),
          wellcond(2, 3, 4), terms=12),
    _both("matrix_norm_2", lambda lib, A: lib.linalg.matrix_norm(A, 2), wellcond(3, 4),
          terms=12),
    _both("matrix_norm_neg2_keepdim", lambda lib, A: lib.linalg.matrix_norm(A, -2,
                                                                             keepdim=True),
          wellcond(2, 3, 4), terms=12),
    _both("matrix_norm_1_dims", lambda lib, A: lib.linalg.matrix_norm(A, 1, dim=(0, 2)),
          normal((3, 2, 4))),
    _both("matrix_norm_neginf", lambda lib, A: lib.linalg.matrix_norm(A, -float("inf")),
          normal((2, 3, 4))),
    _both("norm_default", lambda lib, x: lib.linalg.norm(x), normal((2, 3, 4))),
    _both("norm_matrix_ord", lambda lib, x: lib.linalg.norm(x, 1), normal((3, 4))),
    _both("norm_vector_dim", lambda lib, x: lib.linalg.norm(x, 0.5, dim=1), normal((3, 4))),
    _both("cross", lambda lib, a, b: lib.linalg.cross(a, b), normal((2, 4, 3), (1, 4, 3))),
    _both("cross_dim", lambda lib, a, b: lib.linalg.cross(a, b, dim=0), normal((3, 2), (3, 2))),
    _both("diagonal", lambda lib, A: lib.linalg.diagonal(A), normal((2, 3, 4))),
    _both("diagonal_offset", lambda lib, A: lib.linalg.diagonal(A, offset=1, dim1=0, dim2=2),
          normal((3, 2, 4))),
    _both("diagonal_neg_offset", lambda lib, A: lib.linalg.diagonal(A, offset=-2),
          normal((4, 3))),
    _both("matmul", lambda lib, a, b: lib.linalg.matmul(a, b), normal((2, 3, 4), (4, 2)),
          terms=4),
    _both("multi_dot", lambda lib, a, b, c, d: lib.linalg.multi_dot([a, b, c, d]),
          normal((3,), (3, 5), (5, 2), (2,)), terms=15),
    _both("multi_dot_matrices", lambda lib, a, b, c: lib.linalg.multi_dot([a, b, c]),
          normal((6, 2), (2, 5), (5, 3)), terms=10),
    _both("vecdot", lambda lib, a, b: lib.linalg.vecdot(a, b, dim=0), normal((4, 3), (4, 1)),
          terms=4),
    _both("vander", lambda lib, x: lib.linalg.vander(x), normal((2, 4)), terms=4),
    _both("vander_N", lambda lib, x: lib.linalg.vander(x, N=3), normal((5,))),    # integer outputs: pivots, LAPACK info, Bunch-Kaufman's pivots (compared exactly)
    _both("lu_factor_pivots", lambda lib, A: lib.linalg.lu_factor_ex(A)[1:], wellcond(2, 4, 4),
          grad=False),
    _both("inv_ex_info", lambda lib, A: lib.linalg.inv_ex(A).info, wellcond(2, 3, 3),
          grad=False),
    _both("cholesky_ex_info", lambda lib, A: lib.linalg.cholesky_ex(_sym(A)).info,
          sym(3, 4, 4), grad=False),
    _both("ldl_factor", lambda lib, A: lib.linalg.ldl_factor(_sym(A)), sym(2, 5, 5), terms=25,
          grad=False),
    _both("ldl_factor_ex", lambda lib, A: lib.linalg.ldl_factor_ex(_sym(A)), sym(4, 4),
          terms=16, grad=False),
    _both("ldl_solve", lambda lib, A, B: lib.linalg.ldl_solve(
        *lib.linalg.ldl_factor(_sym(A)), B), system((2, 4, 4), (2, 4, 2)), terms=16,
        grad=False),
    _both("lstsq_gelsd", lambda lib, A, B: lib.linalg.lstsq(A, B, driver="gelsd"),
          system((5, 3), (5, 2)), terms=15, kinds=("torch64", "torch32", "ref")),
    _both("pinv_atol_rtol", lambda lib, A: lib.linalg.pinv(A, atol=0.5, rtol=0.1),
          wellcond(2, 4, 3), terms=12),
    _both("matrix_rank_hermitian_tol", lambda lib, A: lib.linalg.matrix_rank(
        _sym(A), hermitian=True, atol=1.5), sym(2, 4, 4), grad=False),
    _both("cond_neg2", lambda lib, A: lib.linalg.cond(A, -2), wellcond(2, 3, 3), terms=9),
    _both("cond_nuc", lambda lib, A: lib.linalg.cond(A, "nuc").detach(), wellcond(3, 3),
          terms=9, kinds=("torch64", "torch32", "ref")),
    _both("vector_norm_dtype", lambda lib, x: lib.linalg.vector_norm(x, 1, dtype=lib.float64),
          normal((3, 4))),
    _both("norm_nuc_dims", lambda lib, x: lib.linalg.norm(x, "nuc", dim=(0, 2)),
          wellcond(3, 2, 4), terms=12),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_linalg(case, kind):
    check(case, kind)
