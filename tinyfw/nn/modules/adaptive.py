"""`AdaptiveLogSoftmaxWithLoss` (Grave et al. 2017, "Efficient softmax approximation for
GPUs"): a head over the frequent classes plus one entry per cluster, and per cluster a
two-layer low-rank projection; PyTorch's constructor, parameter names and results.

Each cluster's projection runs only on the rows whose target falls in it (the point of
the method); the rows are found on the host from the integer targets."""
from __future__ import annotations

from collections import namedtuple

from ... import creation
from ... import dtypes as _dt
from ...ops.index import cat, index_put
from ...tensor import Tensor
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Log-probabilities of targets under the adaptive softmax, and their mean NLL."""

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if not cutoffs:
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs must not be empty")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs must be unique positive "
                             f"integers in increasing order, each in 1..{n_classes - 1}, got "
                             f"{cutoffs}")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hidden, bias=False, **kw),
                                        Linear(hidden, size, bias=False, **kw)))

    def reset_parameters(self) -> None:
        """Re-initialise the head and every projection as at construction."""
        self.head.reset_parameters()
        for proj in self.tail:
            for layer in proj:
                layer.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> tuple:
        """(output, loss): output[n] is log p(target[n] | input[n]), loss the mean of
        -output.  input (N, in_features) with target (N,), or (in_features,) with a 0-d
        target."""
        op = "AdaptiveLogSoftmaxWithLoss"
        input, target = input_, target_  # PyTorch's parameter names
        if target.ndim == 1:
            if input.ndim != 2:
                raise RuntimeError(f"{op}: a 1-d target needs a 2-d input, got shape "
                                   f"{tuple(input.shape)}")
            if input.shape[0] != target.shape[0]:
                raise RuntimeError(f"{op}: input {tuple(input.shape)} and target "
                                   f"{tuple(target.shape)} differ in batch size")
        elif target.ndim == 0:
            if input.ndim != 1:
                raise RuntimeError(f"{op}: a 0-d target needs a 1-d input, got shape "
                                   f"{tuple(input.shape)}")
        else:
            raise RuntimeError(f"{op}: expected a 0-d or 1-d target, got shape "
                               f"{tuple(target.shape)}")
        batched = target.ndim == 1
        x = input if batched else input.unsqueeze(0)
        t = target.detach().reshape(-1).to(_dt.int64)
        labels = [int(v) for v in t._host().reshape(-1).tolist()]
        bad = [v for v in labels if not 0 <= v < self.n_classes]
        if bad:
            raise RuntimeError(f"{op}: target values must be in [0, {self.n_classes - 1}], "
                               f"got {bad[0]}")
        n = len(labels)
        # the head entry each row reads: its class in the shortlist, else its cluster's
        head_index = list(labels)
        output = x.new_zeros((n,))
        for i in range(self.n_clusters):
            lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
            rows = [k for k, v in enumerate(labels) if lo <= v < hi]
            if not rows:
                continue
            for k in rows:
                head_index[k] = self.shortlist_size + i
            idx = creation.tensor(rows, dtype=_dt.int64, device=x.device)
            rel = creation.tensor([labels[k] - lo for k in rows], dtype=_dt.int64,
                                  device=x.device)
            lp = F.log_softmax(self.tail[i](x[idx]), 1)
            output = index_put(output, (idx,), lp.gather(1, rel.unsqueeze(1)).squeeze(1))
        head_lp = F.log_softmax(self.head(x), 1)
        hidx = creation.tensor(head_index, dtype=_dt.int64, device=x.device)
        output = output + head_lp.gather(1, hidx.reshape(n, 1)).reshape(n)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.reshape(()), loss)

    def log_prob(self, input: Tensor) -> Tensor:
        """log p(c | input) for every class c: (N, in_features) -> (N, n_classes)."""
        head_lp = F.log_softmax(self.head(input), 1)
        parts = [head_lp[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), 1)
            parts.append(cluster + head_lp[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, 1)

    def predict(self, input: Tensor) -> Tensor:
        """The most probable class of each row (log_prob(input).argmax(1))."""
        return self.log_prob(input).argmax(1)
