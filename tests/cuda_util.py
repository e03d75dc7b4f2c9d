"""The CUDA backend seen through numpy: what the conformance tables call it through.

`CudaUnderTest` has the primitives of tinyfw.backend.cuda with numpy arrays in and out:
each argument is uploaded in its own memory layout (strides, negative and 0 strides kept:
the device array views a copy of the host array's whole memory span), results are
downloaded, and arrays that an in-place primitive wrote are copied back into the numpy
arguments.  So the tables written for the CPU kernels check the CUDA kernels on the same
layouts.  Everything here skips with the backend's reason when no GPU can be used.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw

CUDA_REASON = tinyfw.cuda.unavailable_reason()
requires_cuda = pytest.mark.skipif(bool(CUDA_REASON), reason=CUDA_REASON or "CUDA is available")


def upload(a: np.ndarray):
    """A cuda array with a's values and a's strides (a view of a copy of its memory span)."""
    from tinyfw.backend import cuda as B

    if a.size == 0 or a.ndim == 0 or a.flags.c_contiguous:
        return B.from_host(np.array(a, order="C"))
    # the view of a that starts at its lowest address: negative-stride dims flipped
    low = a[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in a.strides)]
    span = sum((n - 1) * abs(s) for n, s in zip(a.shape, a.strides)) + a.itemsize
    raw = np.lib.stride_tricks.as_strided(low, shape=(span // a.itemsize,), strides=(a.itemsize,))
    dev = B.from_host(np.array(raw))
    offset = a.__array_interface__["data"][0] - low.__array_interface__["data"][0]
    return B._strided(dev, a.shape, a.strides, offset, a.flags.writeable)


class CudaUnderTest:
    """The CUDA backend with numpy arguments and results (see the module doc)."""

    name = "cuda"

    def __init__(self):
        from tinyfw.backend import cuda as B

        self.B = B
        #: the primitives with CUDA kernels (the rest raise NotImplementedError)
        self.KERNELS = tuple(n for n in tinyfw.backend.primitives(tinyfw.backend.ref)
                             if n not in B.NOT_IMPLEMENTED)

    def __getattr__(self, name: str):
        f = getattr(self.B, name)

        def call(*args, **kwargs):
            dev = [self._up(a) for a in args]
            out = f(*dev, **kwargs)
            for h, d in zip(args, dev):  # in-place primitives wrote into their arguments
                if isinstance(h, np.ndarray) and h.flags.writeable and h.size:
                    np.copyto(h, self.B.to_host(d))
            return self._down(out)
        return call

    def _up(self, a):
        if isinstance(a, np.ndarray):
            return upload(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self._up(v) for v in a)
        return a

    def _down(self, x):
        if isinstance(x, tuple):
            return tuple(self._down(v) for v in x)
        if x is None or not hasattr(x, "storage"):
            return x
        return self.B.to_host(x)
