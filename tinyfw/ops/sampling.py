"""multinomial (issue 16): indices drawn from rows of non-negative weights.

The draws are made on the host from the generator's stream (as `rand` and `randperm`
are: one seed gives the same indices on every device) and the int64 result is moved to
the input's device; nothing is drawn on the meta device.  The streams are tinyfw's own,
not PyTorch's: tests check the distributions (tests/test_api_int_sampling.py).  The
sampling methods: `tinyfw.backend.host_intops.multinomial_draws`.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..backend import backend_for, host
from ..backend.host_intops import multinomial_draws
from ..random import Generator, _gen
from ..tensor import register_method
from ._util import Tensor

__all__ = ["multinomial"]


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """int64 indices of `num_samples` categories drawn from each row of `input` (1-d or
    2-d, non-negative float weights, not necessarily normalised), with or without
    replacement; shape (num_samples,) or (rows, num_samples)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor, got {type(input).__name__}")
    x = input
    if x.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: input must be 1-d or 2-d, got {x.ndim}-d")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"multinomial: input must be floating point, got {x.dtype.name}")
    if not host.is_integer(num_samples) or num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    n = x.shape[-1]
    if n == 0:
        raise RuntimeError("multinomial: the input has no categories")
    if not replacement and num_samples > n:
        raise RuntimeError(f"multinomial: cannot sample {num_samples} > {n} categories "
                           "without replacement")
    shape = (num_samples,) if x.ndim == 1 else (x.shape[0], num_samples)
    B = backend_for(x.device)
    if x.is_meta:
        return Tensor._make(B.empty(shape, _dt.int64.np))
    w = x.detach().to(_dt.float64).contiguous()._host().reshape(-1, n)
    idx = multinomial_draws(w, int(num_samples), bool(replacement), _gen(generator))
    return Tensor._make(B.from_host(idx.reshape(shape).copy()))


register_method("multinomial", multinomial)
