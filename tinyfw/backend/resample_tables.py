"""Host-side (index, weight) tables of ``interpolate`` (``tinyfw/nn/functional_resample.py``)
and the base grid of ``affine_grid``: numpy on plain sizes, in the precision PyTorch's CPU
kernels use (float32 source positions for float32 inputs; nearest's scale is always a
float32), so the picked indices agree exactly."""
from __future__ import annotations

import numpy as np

CUBIC_A = -0.75


def _nearest_table(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    """Source index per output position, in float32 as PyTorch's nearest_idx."""
    f32 = np.float32
    s = f32(1.0 / scale) if scale is not None and scale > 0 else f32(n_in) / f32(n_out)
    o = np.arange(n_out)
    if exact:
        # (o + 0.5) * scale is a double product rounded to float before floorf
        src = np.floor(((o + 0.5) * np.float64(s)).astype(f32)).astype(np.int64)
    elif n_out == n_in:
        src = o
    elif n_out == 2 * n_in:
        src = o >> 1
    else:
        src = np.floor(o.astype(f32) * s).astype(np.int64)
    return np.minimum(src, n_in - 1)[:, None]


def _source(n_in: int, n_out: int, scale, align_corners: bool, cubic: bool, dt) -> np.ndarray:
    """PyTorch's area_pixel_compute_source_index for every output position, in dt."""
    if align_corners:
        s = dt(n_in - 1) / dt(n_out - 1) if n_out > 1 else dt(0)
        return s * np.arange(n_out).astype(dt)
    s = dt(1.0 / scale) if scale is not None and scale > 0 else dt(n_in) / dt(n_out)
    src = s * (np.arange(n_out).astype(dt) + dt(0.5)) - dt(0.5)
    return src if cubic else np.maximum(src, dt(0))


def _guard(src: np.ndarray, n_in: int, dt) -> tuple:
    """(floor index capped at n_in - 1, fraction clipped to [0, 1]), as guard_index_and_lambda."""
    i = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i.astype(dt), dt(0), dt(1)).astype(dt)
    return i, lam


def _linear_table(n_in, n_out, scale, align_corners, dt) -> tuple:
    i0, lam = _guard(_source(n_in, n_out, scale, align_corners, False, dt), n_in, dt)
    i1 = i0 + (i0 < n_in - 1)
    return np.stack([i0, i1], 1), np.stack([dt(1) - lam, lam], 1)


def _cubic_weights(t: np.ndarray, dt) -> np.ndarray:
    a = dt(CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + dt(2)) * x - (a + dt(3))) * x * x + dt(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - dt(5) * a) * x + dt(8) * a) * x - dt(4) * a

    return np.stack([far(t + dt(1)), near(t), near(dt(1) - t), far(dt(2) - t)], 1)


def _cubic_table(n_in, n_out, scale, align_corners, dt) -> tuple:
    i, t = _guard(_source(n_in, n_out, scale, align_corners, True, dt), n_in, dt)
    taps = np.clip(i[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    return taps, _cubic_weights(t, dt)


def resample_table(mode: str, n_in: int, n_out: int, scale, align_corners, dtype_name: str) -> tuple:
    """(index (O, T) int64, weight (O, T)) of one spatial dim for an interpolate mode."""
    dt = np.float64 if dtype_name == "float64" else np.float32
    if mode in ("nearest", "nearest-exact"):
        index = _nearest_table(n_in, n_out, scale, mode == "nearest-exact")
        return index, np.ones(index.shape)
    if mode == "bicubic":
        return _cubic_table(n_in, n_out, scale, align_corners, dt)
    return _linear_table(n_in, n_out, scale, align_corners, dt)


def _base(steps: int, align_corners: bool) -> np.ndarray:
    """PyTorch's linspace_from_neg_one: -1..1 (scaled by (steps-1)/steps unless align)."""
    if steps <= 1:
        return np.zeros(max(steps, 0))
    r = np.linspace(-1.0, 1.0, steps)
    return r if align_corners else r * (steps - 1) / steps


def affine_base(spatial: tuple, align_corners: bool) -> np.ndarray:
    """(prod(spatial), n + 1) rows (x, y[, z], 1) of affine_grid's base grid; x runs along
    the last dim (W)."""
    n = len(spatial)
    mesh = np.meshgrid(*[_base(s, align_corners) for s in spatial], indexing="ij")
    base = np.stack([mesh[n - 1 - i] for i in range(n)] + [np.ones(spatial)], -1)
    return base.reshape(-1, n + 1)
