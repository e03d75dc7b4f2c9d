"""The CPU backend: C++ kernels from ``tinyfw._C`` override the reference primitives.

Every primitive of ``ref`` is available here; those with a compiled kernel run it, the
rest fall back to numpy.  ``KERNELS`` names the primitives that are compiled.
"""
from __future__ import annotations

from .ref import *  # noqa: F401,F403
from . import ref as _ref

KERNELS: tuple = ()


def _load_C():
    # OpenMP workers that spin between kernels steal the cores from everything else when a
    # machine is shared (PyTorch's pool in the same process, other jobs): tiny kernels then
    # took milliseconds.  Sleeping workers cost a few microseconds per parallel region
    # instead.  The policy is read once, when libgomp loads with _C; the user's own
    # OMP_WAIT_POLICY wins, and the variable is restored so other libraries see it as it was.
    import os
    import warnings

    prev = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from .. import _C
        return _C
    except ModuleNotFoundError:  # not built: the reference primitives serve alone
        return None
    except ImportError as e:  # built but broken: say so instead of silently going slow
        warnings.warn(f"tinyfw._C failed to load ({e}); the cpu backend runs the numpy "
                      "reference primitives instead", RuntimeWarning, stacklevel=2)
        return None
    finally:
        if prev is None:
            os.environ.pop("OMP_WAIT_POLICY", None)


_C = _load_C()
if _C is not None:
    from ._cpu_bind import install as _install

    KERNELS = _install(globals(), _ref)
