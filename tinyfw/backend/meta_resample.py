"""Shapes of the resampling primitives on the meta device (values: ``ref_resample``)."""
from __future__ import annotations

__all__ = ["resample_axis", "resample_axis_backward"]


def _new(shape, dtype):
    from .meta import MetaArray

    return MetaArray(shape, dtype)


def resample_axis(x, index, weight):
    """(B, O, I) for x (B, L, I) and index (O, T)."""
    return _new((x.shape[0], index.shape[0], x.shape[2]), x.dtype)


def resample_axis_backward(g, index, weight, in_size: int):
    """(B, in_size, I) for g (B, O, I)."""
    return _new((g.shape[0], in_size, g.shape[2]), g.dtype)
