"""A numpy stand-in for tinyfw._cuda's kernel interface, for machines without a GPU.

It has the module's Array (storage, byte offset, shape, byte strides, dtype code) and
its functions with the same arguments; each kernel computes what its CUDA kernel
computes, by ref's primitives on numpy views of the storage (gather and scatter by the
same element-offset arithmetic as cuda/index.cu).  With it in place of tinyfw._cuda the
CUDA backend's Python layer (tinyfw/backend/cuda*.py: views, broadcasting, dtypes,
permutations, the cat/pad/tile/flip/index plumbing) runs on the CPU and is checked
against ref by tests/test_cuda_python_layer.py.  It checks no CUDA code.
"""
from __future__ import annotations

import math

import numpy as np

from tinyfw.backend import ref
from tinyfw.backend.ref_cast import convert

UNARY = {n: i for i, n in enumerate(
    "neg abs exp log log1p expm1 sqrt rsqrt reciprocal sin cos tanh sigmoid relu silu erf erfc sign "
    "floor ceil round logical_not isnan isinf gelu gelu_tanh leaky_relu softplus clamp".split())}
BINARY = {n: i for i, n in enumerate(
    "add sub mul div pow maximum minimum atan2 floor_divide remainder eq ne lt le gt ge logical_and "
    "logical_or logical_xor tanh_backward sigmoid_backward silu_backward gelu_backward "
    "gelu_tanh_backward".split())}
REDUCE = {n: i for i, n in enumerate("sum prod amax amin any all".split())}
MAX_DIMS = 12
_U = {i: n for n, i in UNARY.items()}
_BI = {i: n for n, i in BINARY.items()}
_R = {i: n for n, i in REDUCE.items()}
_reg: dict = {}


class Storage:
    def __init__(self, nbytes: int):
        self.buf = np.zeros(max(8, -(-nbytes // 8) * 8), np.uint8)


class Array:
    def __init__(self, storage, offset, shape, strides, code, writeable=True):
        self.storage, self.offset = storage, offset
        self._shape, self._strides = tuple(shape), tuple(strides)
        self.dtype_code, self.writeable = code, writeable

    shape = property(lambda self: self._shape)
    strides = property(lambda self: self._strides)
    dtype = property(lambda self: _reg["dtypes"][self.dtype_code])
    ndim = property(lambda self: len(self._shape))
    size = property(lambda self: math.prod(self._shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    device = property(lambda self: _reg["devices"][0])
    backend = property(lambda self: _reg["backend"])
    device_index = 0

    @property
    def contiguous(self):
        if self.size == 0:
            return True
        expect = self.itemsize
        for n, s in zip(reversed(self._shape), reversed(self._strides)):
            if n != 1 and s != expect:
                return False
            expect *= n
        return True

    def np(self) -> np.ndarray:
        """The numpy view of this array's elements (writes go to the storage)."""
        if self.size == 0:  # an empty view's offset may point past its block
            return np.empty(self._shape, self.dtype)
        return np.ndarray(self._shape, self.dtype, self.storage.buf, self.offset, self._strides)


def register(dtypes, devices, backend):
    _reg.update(dtypes=dtypes, devices=devices, backend=backend)


def device_count():
    return 1


def unavailable_reason():
    return ""


def current_device():
    return 0


def empty(shape, code, device):
    item = _reg["dtypes"][code].itemsize
    st, s = [0] * len(shape), item
    for i in range(len(shape) - 1, -1, -1):
        st[i] = s
        s *= max(shape[i], 1)
    return Array(Storage(math.prod(shape) * item), 0, shape, st, code)


def as_strided(a, shape, strides, offset, writeable=True):
    return Array(a.storage, offset, shape, strides, a.dtype_code, a.writeable and writeable)


def from_host(h, code, device, pinned):
    out = empty(h.shape, code, device)
    out.np()[...] = h
    return out


def to_host(a, h):
    assert a.contiguous
    h[...] = a.np()


def _set(out, values):
    with np.errstate(all="ignore"):
        out.np()[...] = np.asarray(values).astype(out.dtype, copy=False)


def unary(op, out, x, a0, a1):
    n, v = _U[op], x.np()
    with np.errstate(all="ignore"):
        if n == "gelu_tanh":
            r = ref.gelu(v, "tanh")
        elif n == "leaky_relu":
            r = ref.leaky_relu(v, a0)
        elif n == "softplus":
            r = ref.softplus(v, a0, a1)
        elif n == "clamp":
            r = ref.clamp(v, None if a0 == -np.inf else a0, None if a1 == np.inf else a1)
        else:
            r = getattr(ref, n)(v)
    _set(out, r)


def binary(op, out, a, b):
    n = _BI[op]
    with np.errstate(all="ignore"):
        if n in ("gelu_backward", "gelu_tanh_backward"):
            r = ref.gelu_backward(a.np(), b.np(), "tanh" if n == "gelu_tanh_backward" else "none")
        else:
            r = getattr(ref, n)(a.np(), b.np())
    _set(out, r)


def where(out, c, a, b):
    _set(out, ref.where(c.np(), a.np(), b.np()))


def copy(out, x):
    with np.errstate(all="ignore"):
        out.np()[...] = convert(x.np(), out.dtype)


def fill(out, v, iv, is_int):
    out.np()[...] = iv if is_int else v


def tri(out, x, k, upper):
    _set(out, (ref.triu if upper else ref.tril)(x.np(), k))


def reduce(op, out, x, n_kept):
    dims = tuple(range(n_kept, x.ndim))
    _set(out, getattr(ref, _R[op])(x.np(), dims, False))


def arg_reduce(is_max, out, x):
    _set(out, (ref.argmax if is_max else ref.argmin)(x.np(), x.ndim - 1, False))


def cumsum(out, x):
    _set(out, ref.cumsum(x.np(), x.ndim - 1))


def sort(values, indices, x, desc):
    if x.shape and x.shape[-1] > 2048:
        raise NotImplementedError("sort: rows of more than 2048 elements")
    v, i = ref.sort(x.np(), x.ndim - 1, desc)
    _set(values, v)
    _set(indices, i)


def _offsets(a) -> np.ndarray:
    """Element offsets of every element of a (its strides in elements), from its base."""
    item = a.itemsize
    off = np.full(a.shape, a.offset // item, np.int64)
    for d, (n, s) in enumerate(zip(a.shape, a.strides)):
        shape = [1] * a.ndim
        shape[d] = n
        off = off + (np.arange(n, dtype=np.int64) * (s // item)).reshape(shape)
    return off


def _flat(a):
    return a.storage.buf.view(a.dtype)


def gather(out, x, index, dim, size, stride):
    j = index.np().astype(np.int64)
    j = np.where(j < 0, j + size, j)
    out.np()[...] = _flat(x)[_offsets(x) + j * stride]


def scatter(out, index, src, dim, size, stride, add):
    j = index.np().astype(np.int64)
    j = np.where(j < 0, j + size, j)
    target = _offsets(out) + j * stride
    flat = _flat(out)
    if add:
        np.add.at(flat, target.ravel(), src.np().ravel())
    else:
        flat[target.ravel()] = src.np().ravel()


def index_min_max(index):
    v = index.np()
    return (int(v.min()), int(v.max())) if v.size else (0, 0)


def dropout(y, mask, x, p, seed):
    m = np.random.default_rng(seed).random(x.shape) >= p
    _set(mask, m)
    _set(y, np.where(m, x.np() * x.dtype.type(1 / (1 - p)), 0))


def uniform(out, seed, offset):
    _set(out, np.random.default_rng(seed).random(out.shape))


def normal(out, seed, offset):
    _set(out, np.random.default_rng(seed).standard_normal(out.shape))


def memory_stats(device):
    return {k: 0 for k in ("allocated", "max_allocated", "reserved", "max_reserved", "allocations",
                           "cuda_mallocs", "splits", "free_blocks", "ooms", "pinned_reserved")}


def synchronize():
    pass
