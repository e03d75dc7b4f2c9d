"""`LinearCrossEntropyLoss`: a linear layer and cross-entropy in one module (PyTorch's
layout: ``linear.weight`` stored flat as (C * prod(out_features), in_features))."""
from __future__ import annotations

import math

from ...tensor import Tensor
from .. import functional as F
from .linear import Linear
from .module import Module


class LinearCrossEntropyLoss(Module):
    """forward(input, target) = F.linear_cross_entropy(input, weight viewed as
    (num_classes, *out_features, in_features), target, ...)."""

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (),
                 bias: bool = False, device=None, dtype=None, reduction: str = "mean",
                 weight: Tensor | None = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, options=None):
        super().__init__()
        self.in_features, self.num_classes = in_features, num_classes
        self.out_features = tuple(out_features)
        self.linear = Linear(in_features, num_classes * math.prod(self.out_features), bias=bias,
                             device=device, dtype=dtype)
        self.register_buffer("weight", weight)
        self.reduction, self.ignore_index = reduction, ignore_index
        self.label_smoothing, self.options = label_smoothing, options

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of the linear layer's logits against target."""
        shape = (self.num_classes, *self.out_features)
        b = self.linear.bias
        return F.linear_cross_entropy(
            input, self.linear.weight.reshape(*shape, self.in_features), target,
            linear_bias=None if b is None else b.reshape(*shape), weight=self.weight,
            reduction=self.reduction, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, options=self.options)
