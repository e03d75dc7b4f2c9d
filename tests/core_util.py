"""Input builders for the core op tests: the same values as a tinyfw and a torch tensor,
laid out contiguously or as a non-contiguous view (transposed, strided slice, expanded).

A view is built the same way in both libraries from a leaf `base`, so a backward through
the view exercises the view ops' own gradients, and the leaves' `.grad` can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import tinyfw
from helpers import npy, torch

LAYOUTS = ("contig", "T", "sliced", "expanded")
FLOAT_DTYPES = ("float32", "float64")
HALF_DTYPES = ("float16", "bfloat16")


@dataclass
class Pair:
    """One operand in both libraries: the leaves and the (possibly strided) views."""

    tf: tinyfw.Tensor
    th: object
    tf_leaf: tinyfw.Tensor
    th_leaf: object


def values(shape: tuple, seed: int, domain: str = "any") -> np.ndarray:
    """float64 sample values; domain 'pos' gives values in [0.5, 2.5), 'int' small ints."""
    g = np.random.default_rng(seed)
    if domain == "pos":
        return g.uniform(0.5, 2.5, shape)
    if domain == "int":
        return g.integers(-5, 6, shape).astype(np.float64)
    return g.standard_normal(shape)


def _th_dtype(name: str):
    return getattr(torch, name)


def make(shape: tuple, layout: str, dtype: str, seed: int, domain: str = "any",
         requires_grad: bool = False) -> Pair:
    """`shape`-shaped operands in `layout` (falls back to contiguous where impossible)."""
    shape = tuple(shape)
    a = values(shape, seed, domain)
    if layout == "T" and len(shape) >= 2:
        perm = tuple(range(len(shape) - 1, -1, -1))
        base = np.ascontiguousarray(a.transpose(perm))
        view = lambda t: t.permute(*perm)  # noqa: E731
    elif layout == "sliced" and len(shape) >= 1:
        base = np.zeros(shape[:-1] + (2 * shape[-1],))
        base[..., ::2] = a
        view = lambda t: t[..., ::2]  # noqa: E731
    elif layout == "expanded" and len(shape) >= 1 and shape[0] > 1:
        base = a[:1].copy()
        a = np.broadcast_to(base, shape).copy()
        view = lambda t: t.expand(*shape)  # noqa: E731
    else:
        base = a
        view = lambda t: t  # noqa: E731
    tf_leaf = tinyfw.tensor(base, dtype=dtype, requires_grad=requires_grad)
    th_leaf = None
    if torch is not None:
        th_leaf = torch.tensor(npy(tf_leaf.float()) if dtype == "bfloat16" else npy(tf_leaf))
        th_leaf = th_leaf.to(_th_dtype(dtype)).requires_grad_(requires_grad)
    return Pair(view(tf_leaf), view(th_leaf) if th_leaf is not None else None, tf_leaf, th_leaf)


def make_int(shape: tuple, dtype: str, seed: int) -> Pair:
    """Integer (or bool) operands, contiguous."""
    a = values(shape, seed, "int")
    if dtype == "bool":
        a = a > 0
    tf_t = tinyfw.tensor(a.astype(np.dtype("bool" if dtype == "bool" else dtype)))
    th_t = torch.from_numpy(npy(tf_t).copy()) if torch is not None else None
    return Pair(tf_t, th_t, tf_t, th_t)


shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(0, 2 ** 16)
