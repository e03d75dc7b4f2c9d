"""The CPU backend: C++ kernels from ``tinyfw._C`` override the reference primitives.

Every primitive of ``ref`` is available here; those with a compiled kernel run it, the
rest fall back to numpy.  ``KERNELS`` names the primitives that are compiled.
"""
from __future__ import annotations

from .ref import *  # noqa: F401,F403
from . import ref as _ref

KERNELS: tuple = ()
try:
    from .. import _C  # noqa: F401
except ImportError:  # not built: the reference primitives serve alone
    _C = None
else:
    from ._cpu_bind import install as _install

    KERNELS = _install(globals(), _ref)
