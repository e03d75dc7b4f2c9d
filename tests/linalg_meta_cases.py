"""The linear-algebra ops' cases for tests/test_meta_ops.py (every Function runs on meta)."""
from __future__ import annotations

import tinyfw

L = tinyfw.linalg


def _spd(A):
    return A @ A.mT + 4 * tinyfw.eye(A.shape[-1], device=A.device)


def cases(In) -> dict:
    """name -> (fn, input specs), with test_meta_ops's `In`."""
    A = In((2, 3, 3))
    return {
        "linalg_inv": (L.inv, [A]), "linalg_det": (L.det, [A]),
        "linalg_slogdet": (lambda a: L.slogdet(a)[1], [A]),
        "linalg_solve": (L.solve, [A, In((2, 3, 2))]),
        "linalg_solve_triangular": (lambda a, b: L.solve_triangular(a, b, upper=True),
                                    [A, In((3, 2))]),
        "linalg_cholesky": (lambda a: L.cholesky(_spd(a)), [A]),
        "linalg_lu_factor": (lambda a: L.lu_factor(a)[0], [In((2, 4, 3))]),
        "linalg_lu": (lambda a: L.lu(a), [In((3, 4))]),
        "linalg_ldl": (lambda a, b: L.ldl_solve(*L.ldl_factor(_spd(a)), b),
                       [A, In((2, 3, 1), grad=False)]),
        "linalg_eigh": (lambda a: L.eigh(a), [A]),
        "linalg_svd": (lambda a: L.svd(a, full_matrices=False), [In((2, 4, 3))]),
        "linalg_qr": (lambda a: L.qr(a), [In((4, 3))]),
        "geqrf": (lambda a: tinyfw.geqrf(a), [In((4, 3), grad=False)]),
        "linalg_matrix_exp": (L.matrix_exp, [A]),
    }
