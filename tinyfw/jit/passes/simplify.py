"""Algebraic simplification: x*1, x/1, x+(-0.0), x-0 (ops declaring a ``unit``), double
permute, reshape of reshape, casts through an exact intermediate dtype.

An identity is only removed when the op would not change the shape or dtype of x (a
broadcasting ``x * ones(4, 1)`` is not an identity), and never for an integer constant
multiplying a float (the dtype check covers it).
"""
from __future__ import annotations

import numpy as np

from ...ops import shape as S
from ...ops.convert import Cast
from ..ir import Graph

_RESHAPES = (S.View, S.ReshapeCopy)


def _exact(src: np.dtype, dst: np.dtype) -> bool:
    """Every value of dtype `src` is a value of `dst` (the cast loses nothing).  Integers
    fit a float whose significand holds all their bits (int8 in float16 and bfloat16,
    int32 in float64); half types and float32 widen to the wider floats; bool fits all."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst or src.kind == "b":
        return True
    if src.kind in "iu":
        if dst.kind in "iu":
            return dst.itemsize >= src.itemsize and src.kind == dst.kind
        return dst.kind in "fV" and _significand_bits(dst) >= 8 * src.itemsize - (src.kind == "i")
    if src.kind in "fV" and dst.kind in "fV":
        # float16 -> bfloat16 loses precision, bfloat16 -> float16 range: only strict widening
        return dst.itemsize > src.itemsize and _significand_bits(dst) >= _significand_bits(src)
    return False


def _significand_bits(dt: np.dtype) -> int:
    """Bits of a float's significand, the implicit one included (bfloat16 is 'V' to numpy
    when ml_dtypes is not imported, kind 'f' with it)."""
    return int(np.finfo(dt).nmant) + 1


def _cast_source(n):
    """For a Cast node: the value it may read instead of its input (the input of a cast
    before it that lost nothing), or None."""
    if n.fn is not Cast:
        return None
    x = n.inputs[0]
    inner = x.producer
    if inner is None or inner.fn is not Cast or not _exact(inner.inputs[0].dtype, x.dtype):
        return None
    return inner.inputs[0]


def _all_equal(v, x: float) -> bool:
    return v.kind == "const" and isinstance(v.data, np.ndarray) and v.data.size <= 1 << 16 \
        and v.data.dtype.kind in "fiub" and bool(np.all(v.data == x))


def _identity_operand(n):
    """The operand the node passes through unchanged (its op's ``unit`` on the other
    side), or None."""
    unit = getattr(n.fn, "unit", None)
    if unit is None or len(n.inputs) != 2:
        return None
    a, b = n.inputs
    out = n.outputs[0]
    cands = [(a, b)] + ([(b, a)] if n.fn.commutative else [])
    for x, c in cands:
        if _all_equal(c, unit) and x.shape == out.shape and x.dtype == out.dtype \
                and _keeps_negative_zero(n, c, out.dtype):
            return x
    return None


def _keeps_negative_zero(n, c, dtype) -> bool:
    """A float x + 0.0 is not x: -0.0 + 0.0 is +0.0 (so is x - (-0.0)).  An additive
    identity holds for every float x only when the zero added is -0.0, or the zero
    subtracted is +0.0 (an integer zero is +0.0 once promoted)."""
    if n.fn.unit != 0 or np.dtype(dtype).kind != "f":
        return True
    neg = np.signbit(c.data.astype(dtype))
    return bool(neg.all()) if n.fn.commutative else not neg.any()


def run(graph: Graph) -> dict:
    """Rewrite in place; dead producers are left for DCE.  Returns counts per rule."""
    stats = {"identity": 0, "permute": 0, "reshape": 0, "cast": 0}
    for n in list(graph.nodes):
        if n.fn is Cast:
            # x.to(bf16).to(f32).to(bf16) is x.to(bf16); x.to(f32).to(bf16) is not x
            src = _cast_source(n)
            while src is not None:
                n.inputs = [src]
                stats["cast"] += 1
                src = _cast_source(n)
            if n.inputs[0].dtype == n.outputs[0].dtype:
                graph.replace_all_uses(n.outputs[0], n.inputs[0])
                stats["cast"] += 1
            continue
        x = _identity_operand(n)
        if x is not None:
            graph.replace_all_uses(n.outputs[0], x)
            stats["identity"] += 1
            continue
        if n.fn is S.Permute and n.inputs[0].producer is not None \
                and n.inputs[0].producer.fn is S.Permute:
            inner = n.inputs[0].producer
            d1, d2 = inner.attrs["dims"], n.attrs["dims"]
            dims = tuple(d1[j] for j in d2)
            stats["permute"] += 1
            if dims == tuple(range(len(dims))):
                graph.replace_all_uses(n.outputs[0], inner.inputs[0])
            else:
                n.inputs, n.attrs = [inner.inputs[0]], {"dims": dims}
            continue
        if n.fn in _RESHAPES and n.inputs[0].producer is not None \
                and n.inputs[0].producer.fn in _RESHAPES:
            inner = n.inputs[0].producer
            src = inner.inputs[0]
            stats["reshape"] += 1
            if tuple(src.shape) == tuple(n.outputs[0].shape) and n.fn is S.View \
                    and inner.fn is S.View:
                graph.replace_all_uses(n.outputs[0], src)
            else:
                # a view of a view is a view; any copy in the chain makes it a copy
                n.fn = S.View if (n.fn is S.View and inner.fn is S.View) else S.ReshapeCopy
                n.op = n.fn.__name__
                n.inputs = [src]
    return stats
