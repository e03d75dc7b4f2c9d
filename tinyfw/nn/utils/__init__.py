"""`tinyfw.nn.utils`: parameter helpers, and gradient clipping (from tinyfw.optim.clip)."""
from __future__ import annotations

from typing import Iterable

from ...autograd.function import no_grad
from ...tensor import Tensor

try:  # clipping lives with the optimizers; re-exported here under PyTorch's names
    from ...optim.clip import clip_grad_norm_, clip_grad_value_  # noqa: F401
except ImportError:  # pragma: no cover - the optim package is being built alongside
    pass


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-d tensor (a copy)."""
    from ...ops.index import cat

    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-d `vec` into the parameters (in place; each slice
    is cast to its parameter's dtype and moved to its device)."""
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold "
                         f"the {total} elements of the parameters")
    start = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[start:start + n].reshape(p.shape))
            start += n
