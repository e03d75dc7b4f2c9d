"""dtypes and PyTorch's type-promotion rules.

A `DType` names an element type and maps it to a numpy dtype; float16 is numpy's own,
bfloat16 comes from `ml_dtypes` so that numpy arrays can hold it.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np


class DType:
    """An element type: its name, numpy dtype, size and category."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "category", "rank")

    def __init__(self, name: str, np_dtype, category: int, rank: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.category = category  # 0 bool, 1 integer, 2 floating point
        self.is_floating_point = category == 2
        self.rank = rank  # order within the category, for promotion

    def __repr__(self) -> str:
        return f"tinyfw.{self.name}"

    def __reduce__(self):
        # by name, so that unpickling gives back the one module-level instance
        return (as_dtype, (self.name,))


bool_ = DType("bool", np.bool_, 0, 0)
uint8 = DType("uint8", np.uint8, 1, 0)
int8 = DType("int8", np.int8, 1, 0)
int16 = DType("int16", np.int16, 1, 1)
int32 = DType("int32", np.int32, 1, 2)
int64 = DType("int64", np.int64, 1, 3)
float16 = DType("float16", np.float16, 2, 0)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, 2, 0)
float32 = DType("float32", np.float32, 2, 1)
float64 = DType("float64", np.float64, 2, 2)

# new dtypes go at the end: distributed/pipeline.py sends a dtype as its index in ALL
ALL = (bool_, int8, int32, int64, float16, bfloat16, float32, float64, uint8, int16)
INTEGER = (uint8, int8, int16, int32, int64)
FLOATING = (float16, bfloat16, float32, float64)
_by_name = {d.name: d for d in ALL}
_by_name.update(half=float16, float=float32, double=float64, long=int64, int=int32,
                short=int16)
_by_np = {d.np: d for d in ALL}

_default_float = float32


def get_default_dtype() -> DType:
    """The dtype of floating-point tensors made from Python floats."""
    return _default_float


def set_default_dtype(dtype: DType) -> None:
    """Set the default floating-point dtype (float32 or float64)."""
    global _default_float
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"set_default_dtype: {dtype} is not a floating-point dtype")
    _default_float = dtype


def as_dtype(d) -> DType:
    """Accept a DType, a name ('float32'), a numpy dtype or a Python type."""
    if type(d) is DType:
        return d
    if isinstance(d, str):
        try:
            return _by_name[d]
        except KeyError:
            raise TypeError(f"unknown dtype {d!r}; known: {sorted(_by_name)}") from None
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    try:
        return _by_np[np.dtype(d)]
    except (KeyError, TypeError):
        raise TypeError(f"unsupported dtype {d!r}; tinyfw has {[x.name for x in ALL]}") from None


def from_numpy_dtype(npd: np.dtype) -> DType:
    """The DType of a numpy array; raises for dtypes tinyfw does not hold."""
    try:
        return _by_np[npd]
    except KeyError:
        raise TypeError(f"numpy dtype {npd} is not supported by tinyfw") from None


def promote_types(a: DType, b: DType) -> DType:
    """PyTorch's promote_types: the smallest dtype both convert to without loss of category."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a is uint8 or b is uint8:
        # uint8 and int8 hold different ranges: int16 holds both; a wider int holds uint8
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    if a.rank != b.rank:
        return a if a.rank > b.rank else b
    return float32  # float16 with bfloat16: neither holds the other


def _combine(higher: DType | None, lower: DType | None) -> DType | None:
    # PyTorch's combine_categories: a lower tier only wins by a higher category
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher is bool_ or lower.is_floating_point or lower.category > higher.category:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> DType:
    """Result dtype of an op on tensors and Python scalars, by PyTorch's rules.

    Dimensioned tensors outrank 0-dim tensors, which outrank Python scalars; a lower tier
    changes the result only when its category (bool < integer < float) is higher.
    """
    tiers: list[DType | None] = [None, None, None]
    for x in operands:
        if isinstance(x, bool):
            tier, dt = 2, bool_
        elif isinstance(x, int):
            tier, dt = 2, int64
        elif isinstance(x, float):
            tier, dt = 2, _default_float
        else:
            tier, dt = (0 if x._data.ndim else 1), x.dtype
        cur = tiers[tier]
        tiers[tier] = dt if cur is None else promote_types(cur, dt)
    return _combine(tiers[0], _combine(tiers[1], tiers[2]))


def finfo_eps(dtype: DType) -> float:
    """Machine epsilon of a floating dtype."""
    return float(ml_dtypes.finfo(dtype.np).eps)


# the dtype kernels compute half types in: PyTorch's "opmath" type on CPU
COMPUTE = {float16: float32, bfloat16: float32}
