"""Shapes and dtypes of the 3-d convolution primitives on the meta device (values:
``ref_conv3d``)."""
from __future__ import annotations

__all__ = ["conv3d", "conv3d_backward_input", "conv3d_backward_weight"]


def _new(shape, dtype):
    from .meta import MetaArray

    return MetaArray(shape, dtype)


def conv3d(x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """(N, O, OD, OH, OW), x's dtype."""
    out = tuple((x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1)
                // stride[i] + 1 for i in range(3))
    return _new((x.shape[0], w.shape[0]) + out, x.dtype)


def conv3d_backward_input(g, w, x_shape: tuple, *a):
    """x_shape, g's dtype."""
    return _new(x_shape, g.dtype)


def conv3d_backward_weight(g, x, w_shape: tuple, *a):
    """w_shape, g's dtype."""
    return _new(w_shape, g.dtype)
