"""tinyfw.linalg: PyTorch's torch.linalg namespace (every name but the complex-valued eig
and eigvals), batched over leading dims, float32 and float64.

Factorizations run as backend primitives (tinyfw/backend/ref_linalg.py: numpy.linalg and
textbook LAPACK algorithms) with gradients written in tinyfw ops (tinyfw/ops/linalg_fn.py,
linalg_decomp.py); the rest are compositions.  A singular or non-positive-definite input
raises `LinAlgError` naming the batch element, as PyTorch does.
"""
from ..ops.linalg_fn import LinAlgError
from ._decomp import (cond, eigh, eigvalsh, householder_product, matrix_exp, matrix_power,
                     matrix_rank, pinv, qr, svd, svdvals)
from ._products import (cross, diagonal, matmul, matrix_norm, multi_dot, norm, vander, vecdot,
                       vector_norm)
from ._solvers import (cholesky, cholesky_ex, det, inv, inv_ex, ldl_factor, ldl_factor_ex,
                    ldl_solve, lstsq, lu, lu_factor, lu_factor_ex, lu_solve, slogdet, solve,
                    solve_ex, solve_triangular, tensorinv, tensorsolve)

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal",
           "eigh", "eigvalsh", "householder_product", "inv", "inv_ex", "ldl_factor",
           "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor", "lu_factor_ex",
           "lu_solve", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank",
           "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "solve_ex",
           "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vander",
           "vecdot", "vector_norm"]
