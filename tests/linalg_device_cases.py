"""The linear-algebra primitives' cases for tests/test_conformance_devices.py: check
device bit for bit against ref, meta shapes and dtypes against ref."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

batches = st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple)
sizes = st.integers(1, 4)
FLOATS = st.sampled_from([np.float32, np.float64])


def _mat(draw, rng, square=True, spd=False):
    batch, m, dt = draw(batches), draw(sizes), draw(FLOATS)
    n = m if square else draw(sizes)
    a = rng.standard_normal(batch + (m, n))
    if spd:
        a = a @ np.swapaxes(a, -1, -2) + m * np.eye(m)
    return a.astype(dt)


def _two(draw, rng):
    a = _mat(draw, rng)
    b = rng.standard_normal(a.shape[:-1] + (draw(sizes),)).astype(a.dtype)
    return a, b


def _ldl_solve(draw, rng):
    from tinyfw.backend import ref
    a, b = _two(draw, rng)
    a = a + np.swapaxes(a, -1, -2)
    ld, piv, _ = ref.linalg_ldl_factor(a, False)
    return (ld, piv, b), {}


def _permutation(draw, rng):
    from tinyfw.backend import ref
    lu, piv, _ = ref.linalg_lu_factor(_mat(draw, rng, square=False))
    return (piv, lu.shape[-2], draw(st.sampled_from(["float32", "float64"]))), {}


CASES = {
    "linalg_lu_factor": lambda d, r: ((_mat(d, r, square=False),), {}),
    "linalg_cholesky": lambda d, r: ((_mat(d, r, spd=d(st.booleans())), d(st.booleans())), {}),
    "linalg_inv": lambda d, r: ((_mat(d, r),), {}),
    "linalg_solve": lambda d, r: (_two(d, r), {}),
    "linalg_det": lambda d, r: ((_mat(d, r),), {}),
    "linalg_slogdet": lambda d, r: ((_mat(d, r),), {}),
    "linalg_eigh": lambda d, r: ((_mat(d, r), d(st.booleans())), {}),
    "linalg_svd": lambda d, r: ((_mat(d, r, square=False), d(st.booleans())), {}),
    "linalg_qr": lambda d, r: ((_mat(d, r, square=False),
                                d(st.sampled_from(["reduced", "complete"]))), {}),
    "linalg_solve_triangular": lambda d, r: ((*_two(d, r), d(st.booleans()),
                                              d(st.booleans())), {}),
    "linalg_geqrf": lambda d, r: ((_mat(d, r, square=False),), {}),
    "linalg_ldl_factor": lambda d, r: ((_mat(d, r), False), {}),
    "linalg_ldl_solve": _ldl_solve,
    "linalg_lu_permutation": _permutation,
}
