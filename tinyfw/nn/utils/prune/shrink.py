"""Physical shrinking after structured pruning: `shrink(model)` rebuilds Conv2d / Linear /
BatchNorm layers without their pruned channels, and the consumers without the matching
input channels, so that the model really has fewer parameters and FLOPs.

Where it applies: chains inside an ``nn.Sequential``: a producer (Conv2d with groups=1,
or Linear), then any of BatchNorm1d/2d, an elementwise activation, Dropout, Identity,
Max/AvgPool2d, AdaptiveAvgPool2d, Flatten, then a consumer (Conv2d with groups=1, or a
Linear; through Flatten one conv channel is H*W consecutive Linear inputs).  A layer whose
output leaves its Sequential (the model's output, a residual branch) keeps its width.

A channel goes when the producer's (masked) weight rows of it are all zero, or when the
consumer's weights reading it are all zero.  A pruned channel is not silent: PyTorch's
``ln_structured`` masks the weight only, so the channel still emits bias → BatchNorm →
activation, a constant.  `shrink` folds that constant into the consumer's bias where
that is exact: a Linear consumer, or a conv without padding.  A padded conv sees the
constant inside the image and zeros on the border, which no bias reproduces: there
`shrink` refuses unless the constant is zero.  `prune_channels` (or
`zero_pruned_channels` after other structured pruning) masks the pruned channels' bias
and BatchNorm affine too, so they emit exactly zero while fine-tuning and shrink exactly.
BatchNorm is taken in eval mode (running statistics).  The rebuilt layers are plain
(un-pruned) modules holding the masked values; hooks on the old layers do not carry over.
"""
from __future__ import annotations

from ....autograd.function import no_grad
from ....creation import arange, zeros
from .... import dtypes
from ....tensor import Tensor
from ... import modules as nn
from ...modules.module import Module, Parameter
from .methods import custom_from_mask, ln_structured

__all__ = ["shrink", "prune_channels", "zero_pruned_channels"]

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_THROUGH = _ELEMENTWISE + _BN + (nn.Dropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
                                 nn.AdaptiveAvgPool2d, nn.Flatten)


def _effective(module: Module, name: str) -> Tensor | None:
    """The values `module.<name>` takes in a forward (``_orig * _mask`` when pruned), as
    a float64 CPU copy: the folding sums below round once, at the end."""
    with no_grad():
        if name + "_orig" in module._parameters:
            t = getattr(module, name + "_orig") * getattr(module, name + "_mask")
        else:
            t = getattr(module, name, None)
        return None if t is None else t.detach().cpu().to(dtypes.float64).clone()


def _is_layer(m: Module) -> bool:
    return (type(m) is nn.Linear) or (type(m) is nn.Conv2d and m.groups == 1)


def _width(m: Module) -> int:
    return m.out_features if type(m) is nn.Linear else m.out_channels


def _chains(seq: nn.Sequential) -> list:
    """(producer, [layers between], consumer) triples of a Sequential (see module doc)."""
    mods = [m for m in seq._modules.values() if m is not None]
    found = []
    for i, p in enumerate(mods):
        if not _is_layer(p):
            continue
        between = []
        for m in mods[i + 1:]:
            if _is_layer(m):
                if _fits(p, between, m):
                    found.append((p, between, m))
                break
            if not isinstance(m, _THROUGH):
                break
            between.append(m)
    return found


def _fits(p: Module, between: list, c: Module) -> bool:
    width = _width(p)
    if any(isinstance(m, _BN) and m.num_features != width for m in between):
        return False
    flat = [m for m in between if isinstance(m, nn.Flatten)]
    if type(c) is nn.Conv2d:
        return not flat and c.in_channels == width
    if flat:  # a conv channel is H*W consecutive inputs of the Linear
        return (type(p) is nn.Conv2d and flat[0].start_dim == 1 and flat[0].end_dim == -1
                and c.in_features % width == 0)
    return c.in_features == width


def _dead_rows(w: Tensor) -> Tensor:
    """Bool per output channel: all its weights are zero."""
    return (w.reshape(w.shape[0], -1) != 0).sum(dim=1) == 0


def _channel_constant(between: list, bias: Tensor | None, dead: Tensor) -> tuple:
    """(the constant each dead channel emits at the consumer's input, whether it is the
    same at every position: not after an average pool that counts zero padding)."""
    v = zeros(int(dead.sum().item()), dtype=dtypes.float64, device="cpu") if bias is None else bias[dead]
    uniform = True
    with no_grad():
        for m in between:
            if isinstance(m, _BN):
                w, b = _effective(m, "weight"), _effective(m, "bias")
                if m.running_mean is None:  # batch statistics of a constant channel: x̂ = 0
                    v = v * 0.0
                else:
                    mean = m.running_mean.detach().cpu().to(dtypes.float64)[dead]
                    var = m.running_var.detach().cpu().to(dtypes.float64)[dead]
                    v = (v - mean) / (var + m.eps).sqrt()
                if w is not None:
                    v = v * w[dead]
                if b is not None:
                    v = v + b[dead]
            elif isinstance(m, _ELEMENTWISE):
                v = m(v.reshape(1, -1)).reshape(-1)
            elif isinstance(m, nn.AvgPool2d):
                pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
                uniform &= not (m.count_include_pad and any(pad))
    return v, uniform


def _unpadded(c: Module) -> bool:
    return type(c) is nn.Linear or c.padding == "valid" or tuple(c.padding) == (0, 0)


def shrink(model: Module) -> Module:
    """Rebuild the model's pruned channels away, in place (see module doc); returns it.
    The result computes what the masked model computed (eval mode), up to float
    rounding of the folded biases.  Raises ValueError when a pruned channel's constant
    output cannot be folded exactly, or when every channel of a layer is pruned."""
    state: dict = {}  # id(module) -> pending edits: effective weight/bias, kept out/in

    def entry(m):
        if id(m) not in state:
            state[id(m)] = {"module": m, "weight": _effective(m, "weight"),
                            "bias": _effective(m, "bias"), "out": None, "in": None}
        return state[id(m)]

    seqs = [m for m in model.modules() if isinstance(m, nn.Sequential)]
    for seq in seqs:
        names = {id(m): n for n, m in seq._modules.items() if m is not None}
        for p, between, c in _chains(seq):
            ep, ec = entry(p), entry(c)
            width, wc = _width(p), ec["weight"]
            # (out, width, taps): the consumer weights reading each producer channel
            # (Linear inputs of one conv channel are consecutive after Flatten)
            reads = wc.reshape(wc.shape[0], width, -1)
            unread = (reads != 0).sum(dim=(0, 2)) == 0
            dead = _dead_rows(ep["weight"]) & ~unread
            gone = dead | unread
            if bool(gone.all().item()):
                raise ValueError(f"shrink: every channel of layer {names[id(p)]!r} "
                                 f"({type(p).__name__}) is pruned")
            if bool(dead.any().item()):
                v, uniform = _channel_constant(between, ep["bias"], dead)
                if bool((v != 0).any().item()) and not (uniform and _unpadded(c)):
                    raise ValueError(
                        f"shrink: the pruned channels of layer {names[id(p)]!r} still emit "
                        f"a non-zero constant (bias → BatchNorm → activation) that "
                        f"{type(c).__name__} {names[id(c)]!r} sees with padding; it cannot "
                        "be folded into a bias exactly.  Prune with prune_channels, or call "
                        "zero_pruned_channels before fine-tuning, so they emit zero")
                delta = (reads[:, dead].sum(dim=2) * v).sum(dim=1)
                if bool((delta != 0).any().item()):
                    ec["bias"] = delta if ec["bias"] is None else ec["bias"] + delta
            keep = arange(width, device="cpu")[~gone]
            ep["out"] = keep
            per = reads.shape[2] if type(c) is nn.Linear else 1
            ec["in"] = (keep[:, None] * per + arange(per, device="cpu")[None, :]).reshape(-1)
            for m in between:
                if isinstance(m, _BN):
                    entry(m)["out"] = keep
    for seq in seqs:
        for name, m in list(seq._modules.items()):
            if m is not None and id(m) in state:
                setattr(seq, name, _rebuild(state[id(m)]))
    return model


def _param(t: Tensor, like, dtype) -> Parameter:
    """A Parameter of `t` in the layer's dtype, trainable as `like` was (a bias that a
    folded constant creates has no `like`: trainable)."""
    p = Parameter(t.to(dtype).contiguous())
    p.requires_grad_(like.requires_grad if like is not None else True)
    return p


def _rebuild(e: dict) -> Module:
    m, w, b = e["module"], e["weight"], e["bias"]
    pruned = {k[:-5] for k in m._buffers if k.endswith("_mask")}
    ref_w = getattr(m, "weight_orig" if "weight" in pruned else "weight")
    ref_b = getattr(m, "bias_orig" if "bias" in pruned else "bias")
    out = e["out"]
    dt = next((t.dtype for t in (ref_w, ref_b, getattr(m, "running_mean", None))
               if t is not None), dtypes.float32)
    if isinstance(m, _BN):
        new = type(m)(len(out), m.eps, m.momentum, m.affine, m.track_running_stats,
                      bias=b is not None or not m.affine, dtype=dt)
        with no_grad():
            if m.affine:
                new.weight = _param(w[out], ref_w, dt)
                if b is not None:
                    new.bias = _param(b[out], ref_b, dt)
            if m.running_mean is not None:
                for k in ("running_mean", "running_var"):
                    getattr(new, k).copy_(getattr(m, k).detach().cpu()[out])
                new.num_batches_tracked.copy_(m.num_batches_tracked.cpu())
    else:
        out = arange(w.shape[0], device="cpu") if out is None else out
        cols = arange(w.shape[1], device="cpu") if e["in"] is None else e["in"]
        w = w.index_select(0, out).index_select(1, cols)
        if type(m) is nn.Linear:
            new = nn.Linear(len(cols), len(out), bias=b is not None, dtype=dt)
        else:
            new = nn.Conv2d(len(cols), len(out), m.kernel_size, m.stride, m.padding,
                            m.dilation, 1, bias=b is not None, dtype=dt)
        new.weight = _param(w, ref_w, dt)
        if b is not None:
            new.bias = _param(b[out], ref_b, dt)  # a folded constant may create a bias
    held = list(m.parameters()) + [t for t in m.buffers() if t is not None]
    return (new.to(held[0].device) if held else new).train(m.training)


def _producers(model: Module) -> list:
    """(producer, [layers between]) of every chain `shrink` can rebuild."""
    out = []
    for seq in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        out.extend((p, between) for p, between, _ in _chains(seq))
    return out


def zero_pruned_channels(model: Module) -> Module:
    """Mask the bias of each shrinkable layer's pruned output channels (all-zero weight
    rows) and the affine weight and bias of the BatchNorm after it, so those channels
    emit exactly zero (PyTorch's structured pruning leaves the bias: see module doc).
    In place; returns the model."""
    for p, between in _producers(model):
        dead = _dead_rows(_effective(p, "weight"))
        if not bool(dead.any().item()):
            continue
        keep = (~dead).to(p.weight.dtype).to(p.weight.device)
        if p.bias is not None:
            custom_from_mask(p, "bias", keep)
        for m in between:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
                custom_from_mask(m, "weight", keep)
                if m.bias is not None:
                    custom_from_mask(m, "bias", keep)
    return model


def prune_channels(model: Module, amount, n=2, zero_outputs: bool = True) -> Module:
    """Structured pruning of every shrinkable layer: `ln_structured` of `amount` output
    channels (a fraction of those left, or a count) by Ln norm, then, with
    `zero_outputs`, `zero_pruned_channels`.  The model's last layer keeps its width.
    In place; returns the model."""
    for p, _ in _producers(model):
        ln_structured(p, "weight", amount, n, dim=0)
    return zero_pruned_channels(model) if zero_outputs else model
