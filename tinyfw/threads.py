"""Thread control for the C++ kernels: `tinyfw.set_num_threads` / `tinyfw.get_num_threads`.

The compiled kernels (``tinyfw._C``) run with OpenMP; these set how many threads they use.
Without the compiled module the numpy reference backend runs alone and the setting is only
remembered (numpy's own BLAS threads are not controlled here).
"""
from __future__ import annotations

from .backend.cpu import _C  # None when the extension is not built

_fallback = 1


def set_num_threads(n: int) -> None:
    """Use `n` threads (n >= 1) in the C++ kernels, as torch.set_num_threads."""
    global _fallback
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    if _C is not None:
        _C.set_num_threads(n)
    _fallback = n


def get_num_threads() -> int:
    """The number of threads the C++ kernels use (OpenMP's default unless set)."""
    return _C.get_num_threads() if _C is not None else _fallback
