"""Input generators for the conformance cases of cast and the index kernels (gather,
scatter_add, scatter, index, index_put): used by the INDEX table of test_conformance.py.

Each generator is `gen(draw, mk) -> args` where `draw` is hypothesis' data.draw and `mk`
builds an array: `mk(shape, dtype, kind, layout)` (values of `kind` in memory layout
`layout`, as test_conformance's _values/_layout).  Index values span [-n, n) where ref
accepts negative ones, and come from a small range so that duplicates are common.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

BF16 = np.dtype(ml_dtypes.bfloat16)
ALL = [np.dtype(t) for t in (np.float32, np.float64, np.float16, BF16, np.int8, np.int32, np.int64, np.bool_)]
LAYOUTS = ["contiguous", "transposed", "stepped", "reversed", "expanded"]
IDX_LAYOUTS = ["contiguous", "transposed", "stepped", "reversed"]

dims = st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple)


def _dtype(draw):
    return draw(st.sampled_from(ALL))


def _indices(draw, mk, shape, n, negative=True):
    """int64 index array of `shape` with values in [-n, n) (or [0, n)), in some layout."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    lo = -n if negative else 0
    v = rng.integers(lo, max(n, 1), shape) if n > 0 else np.zeros(shape, np.int64)
    return mk(v.astype(np.int64), None, None, draw(st.sampled_from(IDX_LAYOUTS)))


def cast_args(draw, mk):
    """(x, dtype): every pair of the 8 dtypes, special values (NaN, inf, ties, -0.0)."""
    src, dst = _dtype(draw), _dtype(draw)
    x = mk(draw(st.lists(st.integers(0, 5), max_size=4).map(tuple)), src, "special",
           draw(st.sampled_from(LAYOUTS)))
    return x, dst


def _gather_shapes(draw):
    """(x shape, dim, index shape): index.shape[k] <= x.shape[k] for k != dim."""
    xs = draw(dims)
    dim = draw(st.integers(0, len(xs) - 1))
    ish = [draw(st.integers(0, s)) for s in xs]
    ish[dim] = draw(st.integers(0, 6)) if xs[dim] > 0 else 0
    return xs, dim, tuple(ish)


def gather_args(draw, mk):
    xs, dim, ish = _gather_shapes(draw)
    x = mk(xs, _dtype(draw), "normal", draw(st.sampled_from(LAYOUTS)))
    return x, dim, _indices(draw, mk, ish, xs[dim])


def scatter_args(draw, mk):
    """(x, dim, index, src) with src at least as large as index in every dim."""
    xs, dim, ish = _gather_shapes(draw)
    dt = _dtype(draw)
    x = mk(xs, dt, "normal", draw(st.sampled_from(LAYOUTS[:4])))
    src = mk(tuple(s + draw(st.integers(0, 2)) for s in ish), dt, "normal", draw(st.sampled_from(LAYOUTS)))
    return x, dim, _indices(draw, mk, ish, xs[dim]), src


def scatter_assign_args(draw, mk):
    """scatter_args with a C-ordered index: with duplicate indices the element written last
    wins, and numpy's assignment writes in the index's MEMORY order (an implementation
    detail; PyTorch leaves it undefined); the C++ kernels write in C order."""
    x, dim, index, src = scatter_args(draw, mk)
    return x, dim, np.array(index, order="C"), src


def _one_array_index(draw, mk, xs):
    """An index tuple of slices and one integer array (int64 or int32), trailing dims
    sometimes left out; returns (tuple, shape of x[tuple])."""
    dim = draw(st.integers(0, len(xs) - 1))
    n_items = draw(st.integers(dim + 1, len(xs)))
    items, rshape = [], []
    for k in range(n_items):
        if k == dim:
            ish = draw(st.lists(st.integers(0, 4), max_size=2).map(tuple))
            a = _indices(draw, mk, ish, xs[k]) if xs[k] > 0 or not np.prod(ish) else None
            if a is None:
                ish = (0,)
                a = np.zeros(0, np.int64)
            if draw(st.booleans()):
                a = a.astype(np.int32)
            items.append(a)
            rshape += list(ish)
        else:
            start = draw(st.none() | st.integers(-6, 6))
            stop = draw(st.none() | st.integers(-6, 6))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            s = slice(start, stop, step)
            items.append(s)
            rshape.append(len(range(*s.indices(xs[k]))))
    rshape += list(xs[n_items:])
    return tuple(items), tuple(rshape)


def index_args(draw, mk):
    xs = draw(dims)
    x = mk(xs, _dtype(draw), "normal", draw(st.sampled_from(LAYOUTS)))
    idx, _ = _one_array_index(draw, mk, xs)
    return x, idx


def index_put_args(draw, mk):
    """(x, idx, values, accumulate): values of the result's shape or broadcast to it."""
    xs = draw(dims)
    dt = _dtype(draw)
    x = mk(xs, dt, "normal", draw(st.sampled_from(LAYOUTS[:4])))
    idx, rshape = _one_array_index(draw, mk, xs)
    vshape = [s if draw(st.integers(0, 3)) else 1 for s in rshape]
    vshape = vshape[draw(st.integers(0, len(vshape))):]
    values = mk(tuple(vshape), dt, "normal", draw(st.sampled_from(LAYOUTS)))
    accumulate = draw(st.booleans())
    if not accumulate:  # duplicates: the last in C order wins (see scatter_assign_args)
        idx = tuple(np.array(i, order="C") if isinstance(i, np.ndarray) else i for i in idx)
    return x, idx, values, accumulate
