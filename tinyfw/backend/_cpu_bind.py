"""Install the compiled kernels of tinyfw._C over the reference primitives.

The C++ kernels hold the dtypes of csrc/core.h's contract (bool, int8, int32, int64 and
the four float types).  uint8 and int16 arrays are outside it: a kernel refuses them with
a ValueError, and the cpu backend then runs the reference primitive instead
(`needs_ref` says when).  Ops reach kernels through `dispatch._run`, which retries the
op's forward on the reference backend; the few kernels that are also called outside an
op (allocation, copies, fills, casts, the index bounds check) are wrapped here.
"""
from __future__ import annotations

import numpy as np

#: numpy dtypes that no C++ kernel takes (their ops run the numpy reference primitives)
NO_KERNEL_DTYPES = frozenset({np.dtype(np.uint8), np.dtype(np.int16)})

# kernels called outside an op's forward (tensor.py, convert.py, inplace.py, optim,
# index.py), by their number of arguments: wrapped with fixed signatures, which cost less
# than *args on every call (~0.1 us here)
_DIRECT = {"empty": 2, "copy_": 2, "contiguous": 1, "fill_": 2, "cast": 2, "amin": 3, "amax": 3}


def _is_no_kernel(v) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype in NO_KERNEL_DTYPES
    if isinstance(v, np.dtype):
        return v in NO_KERNEL_DTYPES
    if isinstance(v, type) and issubclass(v, np.generic):
        return np.dtype(v) in NO_KERNEL_DTYPES
    d = getattr(v, "np", None)  # a tinyfw DType attr (Cast's target dtype)
    return isinstance(d, np.dtype) and d in NO_KERNEL_DTYPES


def needs_ref(args, kwargs=None) -> bool:
    """True when a kernel's ValueError came from a dtype no kernel takes (an array or a
    target dtype among `args` / `kwargs` values): the reference primitive runs instead."""
    for a in args:
        if _is_no_kernel(a) or (isinstance(a, (list, tuple)) and any(map(_is_no_kernel, a))):
            return True
    return bool(kwargs) and any(_is_no_kernel(v) for v in kwargs.values())


def _retry(ref_fn, args: tuple):
    """Called while a kernel's ValueError is handled: the reference primitive's result
    when the error came from a dtype no kernel takes, else that error again."""
    if not needs_ref(args):
        raise  # noqa: PLE0704  (re-raises the kernel's ValueError being handled)
    return ref_fn(*args)


def _with_ref_fallback(kernel, ref_fn, arity: int):
    if arity == 1:
        def run(a):
            try:
                return kernel(a)
            except ValueError:
                return _retry(ref_fn, (a,))
    elif arity == 2:
        def run(a, b):
            try:
                return kernel(a, b)
            except ValueError:
                return _retry(ref_fn, (a, b))
    else:
        def run(a, b, c):
            try:
                return kernel(a, b, c)
            except ValueError:
                return _retry(ref_fn, (a, b, c))
    run.__name__ = run.__qualname__ = kernel.__name__
    run.__doc__ = kernel.__doc__
    run.__module__ = "tinyfw._C"
    return run


def install(namespace: dict, ref) -> tuple:
    """Replace each primitive in `namespace` that _C implements; return their names."""
    from .. import _C

    names = []
    for name in dir(_C):
        if not name.startswith("_") and hasattr(ref, name):
            k = getattr(_C, name)
            if name in _DIRECT:
                k = _with_ref_fallback(k, getattr(ref, name), _DIRECT[name])
            namespace[name] = k
            names.append(name)
    return tuple(sorted(names))
