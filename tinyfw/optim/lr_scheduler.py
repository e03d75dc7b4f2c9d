"""Learning-rate schedulers, shaped like ``torch.optim.lr_scheduler``.

Call ``scheduler.step()`` once per epoch (or per batch for OneCycleLR) AFTER
``optimizer.step()``.  The schedulers use PyTorch's recursive ("chainable") formulas, so
the learning rates agree with PyTorch's to the last bit, and they compose the same way
(two schedulers on one optimizer multiply their effects).

``state_dict()`` returns every attribute except the optimizer (plain numbers and lists,
so checkpoints store it as JSON); ``load_state_dict`` restores it.

The classes are defined in two files by idea — `_lr_scheduler_simple` (the base class and
the one-formula schedulers) and `_lr_scheduler_composite` (SequentialLR, OneCycleLR,
ReduceLROnPlateau) — and are public here only.
"""
from __future__ import annotations

from . import _lr_scheduler_composite, _lr_scheduler_simple
from ._lr_scheduler_composite import OneCycleLR, ReduceLROnPlateau, SequentialLR
from ._lr_scheduler_simple import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR,
                                   LRScheduler, MultiStepLR, StepLR, _check_optimizer)

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau"]

# the classes keep this module's name, so reprs and pickles still say
# tinyfw.optim.lr_scheduler.X
for _part in (_lr_scheduler_simple, _lr_scheduler_composite):
    for _name in _part.__all__:
        getattr(_part, _name).__module__ = __name__
del _part, _name
