"""Install the compiled kernels of tinyfw._C over the reference primitives."""
from __future__ import annotations


def install(namespace: dict, ref) -> tuple:
    """Replace each primitive in `namespace` that _C implements; return their names."""
    from .. import _C

    names = []
    for name in dir(_C):
        if not name.startswith("_") and hasattr(ref, name):
            namespace[name] = getattr(_C, name)
            names.append(name)
    return tuple(sorted(names))
