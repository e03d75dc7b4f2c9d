"""tinyfw.linalg's edges against PyTorch: singular and indefinite inputs (LinAlgError
naming the batch element, info values), empty matrices and batches, NaN, hypothesis-drawn
batch shapes with broadcasting, and the error messages for bad arguments."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from helpers import npy, torch
from linalg_inputs import sym_arr, wellcond_arr

L = tinyfw.linalg
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _singular_batch():
    a = np.stack([np.eye(3), np.zeros((3, 3)), np.diag([1.0, 0.0, 2.0])])
    a[2, 1, 0] = 1.0  # singular with a non-zero below the zero pivot
    return a


@needs_torch
@pytest.mark.parametrize("name, call", [
    ("inv", lambda lib, a: lib.linalg.inv(a)),
    ("solve", lambda lib, a: lib.linalg.solve(a, lib.ones(3, 3, 1, dtype=a.dtype))),
    ("lu_factor", lambda lib, a: lib.linalg.lu_factor(a)),
    ("matrix_power", lambda lib, a: lib.linalg.matrix_power(a, -1)),
])
def test_singular_raises_naming_the_batch_element(name, call):
    a = _singular_batch()
    with pytest.raises(RuntimeError) as want:
        call(torch, torch.tensor(a))
    with pytest.raises(RuntimeError) as got:
        call(tinyfw, tinyfw.tensor(a))
    assert str(got.value) == str(want.value).split("\n")[0]
    if name != "lu_factor":
        assert isinstance(got.value, L.LinAlgError)


@needs_torch
def test_not_positive_definite_names_the_minor():
    a = sym_arr(np.random.default_rng(0), (3, 4, 4), 1.0, 3.0)
    a[1, 2, 2] = -5.0
    with pytest.raises(torch.linalg.LinAlgError) as want:
        torch.linalg.cholesky(torch.tensor(a))
    with pytest.raises(L.LinAlgError) as got:
        L.cholesky(tinyfw.tensor(a))
    assert str(got.value) == str(want.value)
    _, info = L.cholesky_ex(tinyfw.tensor(a))
    _, tinfo = torch.linalg.cholesky_ex(torch.tensor(a))
    assert info.tolist() == tinfo.tolist()


@needs_torch
def test_info_values_match_lapack():
    a = _singular_batch()
    assert L.inv_ex(tinyfw.tensor(a)).info.tolist() == \
        torch.linalg.inv_ex(torch.tensor(a)).info.tolist()
    assert L.lu_factor_ex(tinyfw.tensor(a)).info.tolist() == \
        torch.linalg.lu_factor_ex(torch.tensor(a)).info.tolist()
    with pytest.raises(L.LinAlgError, match=r"\(Batch element 1\)"):
        L.inv_ex(tinyfw.tensor(a), check_errors=True)


EMPTY = [
    ("inv", lambda lib, a: lib.linalg.inv(a), [(0, 0), (2, 0, 0), (0, 3, 3)]),
    ("det", lambda lib, a: lib.linalg.det(a), [(0, 0), (2, 0, 0), (0, 3, 3)]),
    ("slogdet", lambda lib, a: lib.linalg.slogdet(a), [(0, 0), (0, 2, 2)]),
    ("cholesky", lambda lib, a: lib.linalg.cholesky(a), [(0, 0), (0, 3, 3)]),
    ("eigh", lambda lib, a: lib.linalg.eigh(a)[0], [(0, 0), (0, 3, 3)]),
    ("svdvals", lambda lib, a: lib.linalg.svdvals(a), [(0, 3), (3, 0), (2, 0, 0)]),
    ("svd", lambda lib, a: lib.linalg.svd(a, full_matrices=False), [(0, 3), (2, 3, 0)]),
    ("qr", lambda lib, a: lib.linalg.qr(a), [(0, 3), (3, 0)]),
    ("lu_factor", lambda lib, a: lib.linalg.lu_factor(a)[0], [(0, 0), (0, 3, 2)]),
    ("pinv", lambda lib, a: lib.linalg.pinv(a), [(0, 3), (3, 0)]),
    ("matrix_rank", lambda lib, a: lib.linalg.matrix_rank(a), [(0, 3), (2, 0, 0)]),
    ("matrix_norm", lambda lib, a: lib.linalg.matrix_norm(a), [(0, 3), (2, 0, 0)]),
    ("matrix_exp", lambda lib, a: lib.linalg.matrix_exp(a), [(0, 0), (0, 2, 2)]),
    ("solve", lambda lib, a: lib.linalg.solve(a, a), [(0, 0), (0, 2, 2)]),
]


@needs_torch
@pytest.mark.parametrize("name, call, shapes", EMPTY, ids=[e[0] for e in EMPTY])
def test_empty_matrices_and_batches(name, call, shapes):
    for shape in shapes:
        a = np.zeros(shape)
        got, want = call(tinyfw, tinyfw.tensor(a)), call(torch, torch.tensor(a))
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape), f"{name} {shape}"
            np.testing.assert_array_equal(npy(g), w.numpy(), err_msg=f"{name} {shape}")


@needs_torch
@pytest.mark.parametrize("call", [
    lambda lib, a: lib.linalg.det(a), lambda lib, a: lib.linalg.inv(a),
    lambda lib, a: lib.linalg.solve(a, a), lambda lib, a: lib.linalg.slogdet(a)[1],
    lambda lib, a: lib.linalg.solve_triangular(a, a, upper=True),
])
def test_nan_propagates(call):
    a = wellcond_arr(np.random.default_rng(1), (3, 3))
    a[1, 1] = np.nan
    got = npy(call(tinyfw, tinyfw.tensor(a)))
    want = call(torch, torch.tensor(a)).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@needs_torch
def test_zero_diagonal_triangular_solve_gives_inf_like_torch():
    a = np.triu(np.ones((3, 3)))
    a[2, 2] = 0.0
    b = np.ones((3, 1))
    got = npy(L.solve_triangular(tinyfw.tensor(a), tinyfw.tensor(b), upper=True))
    want = torch.linalg.solve_triangular(torch.tensor(a), torch.tensor(b), upper=True).numpy()
    np.testing.assert_array_equal(got, want)


batch_shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)


@needs_torch
@given(batch_shapes, batch_shapes, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2 ** 16))
@settings(max_examples=40, deadline=None)
def test_batched_solve_broadcasts_like_torch(ba, bb, n, k, seed):
    """solve/det/inv/cholesky over drawn batch shapes (broadcasting between A and B)."""
    rng = np.random.default_rng(seed)
    try:
        batch = np.broadcast_shapes(ba, bb)
    except ValueError:
        with pytest.raises(RuntimeError):
            L.solve(tinyfw.zeros(*ba, n, n), tinyfw.zeros(*bb, n, k))
        return
    a = wellcond_arr(rng, ba + (n, n))
    b = rng.standard_normal(bb + (n, k))
    got = npy(L.solve(tinyfw.tensor(a), tinyfw.tensor(b)))
    want = torch.linalg.solve(torch.tensor(a), torch.tensor(b)).numpy()
    assert got.shape == want.shape  # (B may be read as a batch of vectors, as in torch)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(L.det(tinyfw.tensor(a))),
                               torch.linalg.det(torch.tensor(a)).numpy(), rtol=1e-10,
                               atol=1e-12)
    s = sym_arr(rng, ba + (n, n), 1.0, 3.0)
    np.testing.assert_allclose(npy(L.cholesky(tinyfw.tensor(s))),
                               torch.linalg.cholesky(torch.tensor(s)).numpy(), rtol=1e-10,
                               atol=1e-12)


@needs_torch
@given(batch_shapes, st.integers(1, 4), st.integers(1, 4), st.integers(0, 2 ** 16))
@settings(max_examples=30, deadline=None)
def test_batched_spectra_and_qr_match_torch(batch, m, n, seed):
    """svdvals, eigvalsh, qr's |diag R| and lu_factor over drawn batch shapes (the factors'
    signs are LAPACK's choice, so R's diagonal is compared in magnitude)."""
    rng = np.random.default_rng(seed)
    a = wellcond_arr(rng, batch + (m, n))
    s = sym_arr(rng, batch + (n, n))
    pairs = [(L.svdvals(tinyfw.tensor(a)), torch.linalg.svdvals(torch.tensor(a))),
             (L.eigvalsh(tinyfw.tensor(s)), torch.linalg.eigvalsh(torch.tensor(s))),
             (L.lu_factor(tinyfw.tensor(a))[0], torch.linalg.lu_factor(torch.tensor(a))[0])]
    r, tr = L.qr(tinyfw.tensor(a)).R, torch.linalg.qr(torch.tensor(a)).R
    pairs.append((r.abs(), tr.abs()))
    for got, want in pairs:
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(npy(got), want.numpy(), rtol=1e-10, atol=1e-12)


ERRORS = [
    (lambda: L.inv(tinyfw.ones(3, 3, dtype=tinyfw.int64)),
     "linalg.inv: Expected a floating point or complex tensor as input. Got Long"),
    (lambda: L.inv(tinyfw.ones(3, 3, dtype=tinyfw.float16)),
     "linalg.inv: Low precision dtypes not supported. Got Half"),
    (lambda: L.inv(tinyfw.ones(3)), "linalg.inv: The input tensor A must have at least 2"),
    (lambda: L.det(tinyfw.ones(3, 4)),
     "linalg.det: A must be batches of square matrices, but they are 3 by 4 matrices"),
    (lambda: L.eigh(tinyfw.ones(3, 4)), "linalg.eigh: A must be batches of square"),
    (lambda: L.eigh(tinyfw.eye(3), UPLO="X"), "UPLO argument to be 'L' or 'U'"),
    (lambda: L.svd(tinyfw.ones(3, 4, dtype=tinyfw.int32)), "linalg.svd: Expected a floating"),
    (lambda: L.solve(tinyfw.eye(3), tinyfw.ones(4)),
     r"^linalg.solve: Incompatible shapes of A and B for the equation AX = B \(3x3 and 4x1\)"),
    (lambda: L.solve(tinyfw.eye(3).expand(2, 3, 3), tinyfw.ones(3, 3, 3, 1)), "batch dims"),
    (lambda: L.solve(tinyfw.eye(3), tinyfw.ones(3, 1, dtype=tinyfw.float64)),
     "Expected A and B to have the same dtype"),
    (lambda: L.qr(tinyfw.eye(3), mode="foo"), "qr received unrecognized mode 'foo'"),
    (lambda: L.lstsq(tinyfw.eye(3), tinyfw.ones(3, 1), driver="foo"),
     "parameter `driver` should be one of"),
    (lambda: L.matrix_norm(tinyfw.eye(3), ord=3), "linalg.matrix_norm: Order 3 not supported"),
    (lambda: L.cross(tinyfw.ones(3, 2), tinyfw.ones(3, 2)),
     "linalg.cross: inputs dimension -1 must have length 3. Got 2 and 2"),
    (lambda: L.multi_dot([tinyfw.ones(3)]), "expected at least 2 tensors but got 1"),
    (lambda: L.multi_dot([tinyfw.ones(3, 2), tinyfw.ones(3, 2)]), "cannot be multiplied"),
    (lambda: L.vander(tinyfw.ones(1)), "N must be greater than 1"),
    (lambda: L.lu_factor(tinyfw.eye(3), pivot=False), "LU without pivoting is not implemented"),
    (lambda: L.matrix_power(tinyfw.ones(3, 4), 2), "A must be batches of square matrices"),
    (lambda: L.tensorinv(tinyfw.ones(2, 3, 4), ind=1), "prod\\(self.shape\\[ind:\\]\\)"),
    (lambda: L.householder_product(tinyfw.ones(2, 3), tinyfw.ones(2)),
     "input.shape\\[-2\\] must be greater than or equal to input.shape\\[-1\\]"),
    (lambda: L.solve_triangular(tinyfw.eye(3), tinyfw.ones(3), upper=True),
     "The input tensor B must have at least 2 dimensions"),
    (lambda: tinyfw.mv(tinyfw.ones(3), tinyfw.ones(3)), "mv: input must be a 2-D tensor"),
    (lambda: tinyfw.addmm(tinyfw.ones(3), tinyfw.ones(3), tinyfw.ones(3, 3)),
     "addmm: mat1 must be a 2-D tensor"),
    (lambda: tinyfw.inner(tinyfw.ones(3), tinyfw.ones(4)), "the last dimension must match"),
    (lambda: tinyfw.cross(tinyfw.ones(2, 2), tinyfw.ones(2, 2)), "no dimension of size 3"),
    (lambda: tinyfw.cholesky_inverse(tinyfw.ones(3)), "must have at least 2 dimensions"),
]


@pytest.mark.parametrize("fn, pattern", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_bad_arguments_raise_naming_the_op(fn, pattern):
    with pytest.raises(RuntimeError, match=pattern):
        fn()


def test_qr_complete_tall_has_no_gradient():
    a = tinyfw.tensor(wellcond_arr(np.random.default_rng(2), (4, 3)), requires_grad=True)
    Q, R = L.qr(a, mode="complete")
    with pytest.raises(RuntimeError, match="mode='complete' when nrows > ncols"):
        (Q.sum() + R.sum()).backward()


def test_linalg_is_its_own_module_and_ops_linalg_still_imports():
    import tinyfw.ops.linalg as old
    assert tinyfw.linalg.__name__ == "tinyfw.linalg"
    assert old.matmul is tinyfw.matmul and tinyfw.linalg.matmul is not None


@needs_torch
@pytest.mark.parametrize("fn", ["eigvalsh", "svdvals"])
def test_repeated_spectrum_gradient_of_values_is_finite_like_torch(fn):
    a = np.diag([1.0, 1.0, 2.0])
    x, t = tinyfw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    getattr(L, fn)(x).sum().backward()
    getattr(torch.linalg, fn)(t).sum().backward()
    np.testing.assert_allclose(npy(x.grad), t.grad.numpy(), atol=1e-12)


@needs_torch
def test_det_gradient_at_a_singular_matrix_matches_torch():
    """docs/semantics.md: at an exactly singular matrix det's gradient is 0 (PyTorch 2.13
    gives 0 too for this rank-1 matrix, not the cofactor matrix)."""
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x, t = tinyfw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    L.det(x).backward()
    torch.linalg.det(t).backward()
    np.testing.assert_array_equal(np.abs(npy(x.grad)), np.abs(t.grad.numpy()))


def test_traced_solve_and_einsum():
    """jit.trace records solve / eigh / det / einsum and replays them with the same values
    and gradients (the singularity check is skipped while tracing: docs/semantics.md)."""
    rng = np.random.default_rng(3)
    A = tinyfw.tensor(wellcond_arr(rng, (3, 3)), requires_grad=True)
    B = tinyfw.tensor(rng.standard_normal((3, 2)))

    def f(A, B):
        X = L.solve(A, B)
        w, _ = L.eigh(A @ A.mT)
        return tinyfw.einsum("ij,jk->ik", X.mT, X).sum() + w.sum() + L.det(A)

    traced = tinyfw.jit.trace(f, (A, B))
    y_eager, y_traced = f(A, B), traced(A, B)
    np.testing.assert_allclose(npy(y_traced), npy(y_eager), rtol=1e-12)
    y_traced.backward()
    g = npy(A.grad).copy()
    A.grad = None
    y_eager.backward()
    np.testing.assert_allclose(g, npy(A.grad), rtol=1e-10, atol=1e-12)
