"""`AdaptiveLogSoftmaxWithLoss` (Grave et al., "Efficient softmax approximation for
GPUs"): frequent classes get a full-size head, rarer ones are grouped in clusters whose
projections shrink by div_value per cluster.  Parameter names, shapes and the returned
(output, loss) pair follow PyTorch, so state dicts transfer."""
from __future__ import annotations

from collections import namedtuple
from typing import Sequence

from ... import creation
from ... import dtypes as _dt
from ...ops.elementwise import where
from ...ops.index import cat
from ...tensor import Tensor
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

ASMOutput = namedtuple("ASMOutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Classes [0, cutoffs[0]) are scored by the head directly; cluster i holds classes
    [cutoffs[i], cutoffs[i+1]) (the last ends at n_classes) and is one more head output,
    scored within by tail[i] = Linear(in, in // div_value**(i+1)) -> Linear(.., size).

    forward(input (N, in) or (in,), target (N,) or ()) -> (output: the target's log
    probability per row, loss: the mean of -output); log_prob(input) gives every class's
    log probability; predict(input) the most probable class."""

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0, head_bias: bool = False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if not cutoffs:
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                             "length larger than 0")
        if cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1 \
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs):
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                             "unique, positive integers sorted in an increasing order, where "
                             f"each value is between 1 and n_classes-1, got {cutoffs}")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = dict(device=device, dtype=dtype)
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        tails = []
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            tails.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                    Linear(hsz, osz, bias=False, **kw)))
        self.tail = ModuleList(tails)

    def reset_parameters(self) -> None:
        """Re-initialise the head and every tail layer (Linear's default init)."""
        self.head.reset_parameters()
        for seq in self.tail:
            for layer in seq:
                layer.reset_parameters()

    def forward(self, input: Tensor, target: Tensor) -> ASMOutput:
        """(log probability of each row's target, mean negative log likelihood)."""
        name = "AdaptiveLogSoftmaxWithLoss"
        batched = target.ndim == 1
        if target.ndim == 0:
            if input.ndim != 1:
                raise RuntimeError(f"{name}: a 0-d target needs a 1-d input, got input of "
                                   f"shape {tuple(input.shape)}")
            input, target = input.unsqueeze(0), target.unsqueeze(0)
        elif target.ndim == 1:
            if input.ndim != 2 or input.shape[0] != target.shape[0]:
                raise RuntimeError(f"{name}: input {tuple(input.shape)} and target "
                                   f"{tuple(target.shape)} should have the same batch size "
                                   "(input 2-d)")
        else:
            raise RuntimeError(f"{name}: target must be 0-d or 1-d, got shape "
                               f"{tuple(target.shape)}")
        if target.numel():
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= self.n_classes:
                raise RuntimeError(f"{name}: target values should be in [0, "
                                   f"{self.n_classes - 1}], but values in range [{lo}, {hi}] "
                                   "were found")
        n = target.shape[0]
        output = creation.zeros(n, dtype=input.dtype, device=input.device)
        positions = creation.arange(n, device=input.device)
        head_index = target
        for i in range(1, len(self.cutoffs)):
            low, high = self.cutoffs[i - 1], self.cutoffs[i]
            in_cluster = (target >= low) & (target < high)
            rows = positions.masked_select(in_cluster)
            if rows.numel() == 0:
                continue
            head_index = where(in_cluster, self.shortlist_size + i - 1, head_index)
            local = F.log_softmax(self.tail[i - 1](input.index_select(0, rows)), dim=1)
            picked = local.gather(1, (target.index_select(0, rows) - low).unsqueeze(1))
            output = output.scatter_add(0, rows, picked.reshape(-1))
        head_logprob = F.log_softmax(self.head(input), dim=1)
        output = output + head_logprob.gather(1, head_index.unsqueeze(1).to(_dt.int64)).reshape(-1)
        loss = (-output).mean()
        return ASMOutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, dim=1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log probabilities of every class: (N, n_classes), or (n_classes,) for 1-d input."""
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most probable class of each row: (N,), or () for 1-d input."""
        return self.log_prob(input).argmax(dim=-1)
