"""The two kernels of the shm backend: the rank sum (`sum_into`) and the wait for a shared
word (`wait_word_ge`).  The C++ ones (csrc/collective.cpp) release the GIL; the numpy and
Python ones here are their definition, and run when the extension is not built."""
from __future__ import annotations

import os
import time

import numpy as np

from ..backend.cpu import _C  # None when the extension is not built
from ..dtypes import bfloat16 as _bf16

FLOATS = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64, _bf16.np))


def sum_into_ref(outs: list, ins: list, divisor: float = 1.0) -> None:
    """Every array of `outs` <- (ins[0] + ins[1] + ...) / divisor: equal-sized contiguous
    floating arrays, summed in list order in float32 for the half types (float64 for
    float64) and rounded once; an output may be one of the inputs."""
    if not outs or not ins:
        raise ValueError("sum_into: needs at least one output and one input")
    if not divisor > 0:
        raise ValueError("sum_into: divisor must be positive")
    dt = ins[0].dtype
    if dt not in FLOATS:
        raise ValueError(f"sum_into: needs a floating dtype, got {dt.name}")
    for a in list(outs) + list(ins):
        if a.dtype != dt or a.size != ins[0].size:
            raise ValueError(f"sum_into: dtypes or sizes differ ({a.dtype.name} {a.size}, "
                             f"{dt.name} {ins[0].size})")
        if not a.flags.c_contiguous:
            raise ValueError("sum_into: needs contiguous buffers")
    ct = np.float64 if dt == np.float64 else np.float32
    acc = ins[0].astype(ct).ravel()  # a copy: the outputs may be inputs
    for a in ins[1:]:
        acc += a.astype(ct, copy=False).ravel()
    if divisor != 1:
        acc /= ct(divisor)
    for o in outs:
        o[...] = acc.reshape(o.shape).astype(dt)


def wait_word_ge_ref(ctl: np.ndarray, word: int, value: int, timeout: float,
                     yield_s: float) -> bool:
    """Whether ctl[word] >= value within `timeout` seconds: polls, yields the core for the
    first `yield_s` seconds, then sleeps with backoff up to 0.2 ms."""
    t0 = time.monotonic()
    delay = 0.00002
    while ctl[word] < value:
        waited = time.monotonic() - t0
        if waited > timeout:
            return False
        if waited < yield_s:
            os.sched_yield()
        else:
            time.sleep(delay)
            delay = min(delay * 2, 0.0002)
    return True


sum_into = _C.sum_into if _C is not None else sum_into_ref
wait_word_ge = _C.wait_word_ge if _C is not None else wait_word_ge_ref
