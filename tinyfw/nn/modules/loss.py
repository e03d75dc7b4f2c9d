"""Losses as modules, and knowledge distillation (`DistillationLoss`, `distillation_loss`)."""
from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from .module import Module

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(Module):
    def __init__(self, reduction: str = "mean", allowed: tuple = _REDUCTIONS):
        super().__init__()
        if reduction not in allowed:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {allowed}, got "
                             f"{reduction!r}")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, reduction: str = "mean"):
        super().__init__(reduction)
        # a buffer, as in PyTorch: it is saved with the state dict and follows .to()
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits (N, C[, d1, ...]) against class indices or class
    probabilities; weight, ignore_index, label_smoothing as PyTorch."""

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """cross_entropy(input, target, ...)."""
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C[, d1, ...]) at class indices."""

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """nll_loss(input, target, ...)."""
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """mse_loss(input, target)."""
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """l1_loss(input, target)."""
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1]."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """binary_cross_entropy(input, target, weight)."""
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy of logits (sigmoid fused in, numerically stable); pos_weight
    weighs the positive term per class."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """binary_cross_entropy_with_logits(input, target, weight, pos_weight)."""
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """KL(target || exp(input)) with input log-probabilities; reduction may be
    'batchmean' (the mathematically correct mean over the batch)."""

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction, _REDUCTIONS + ("batchmean",))
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """kl_div(input, target, reduction, log_target)."""
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> Tensor:
    """Knowledge-distillation loss (Hinton, Vinyals & Dean, 2015):

        alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))
        + (1 - alpha) * cross_entropy(student, target)

    The KL term is averaged over the batch ('batchmean'); T^2 keeps its gradient scale
    independent of T.  The teacher's logits are treated as constants (detached)."""
    if temperature <= 0:
        raise ValueError(f"distillation_loss: temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    if tuple(student_logits.shape) != tuple(teacher_logits.shape):
        raise ValueError(f"distillation_loss: student logits {tuple(student_logits.shape)} and "
                         f"teacher logits {tuple(teacher_logits.shape)} differ in shape")
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / t, dim=1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, target)
    return soft * (alpha * t * t) + hard * (1.0 - alpha)


class DistillationLoss(Module):
    """Module form of `distillation_loss`: ``loss(student_logits, teacher_logits, target)``."""

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"DistillationLoss: temperature must be positive, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"DistillationLoss: alpha must be in [0, 1], got {alpha}")
        self.temperature = temperature
        self.alpha = alpha

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        """The distillation loss of a batch."""
        return distillation_loss(student_logits, teacher_logits, target, self.temperature,
                                 self.alpha)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}"
