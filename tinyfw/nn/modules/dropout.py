"""`Dropout`: zero elements with probability p while training, scale the rest by 1/(1-p)."""
from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from .module import Module


class Dropout(Module):
    """Randomly zeroes elements with probability p in training mode (scaling the kept
    ones by 1/(1-p)); the identity in eval mode.  Draws from the tinyfw default
    generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """dropout(input, p, training)."""
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
