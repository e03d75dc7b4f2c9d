"""Module fusion before quantization: Conv+BatchNorm(+ReLU), Conv+ReLU, Linear+ReLU.

In eval mode (post-training quantization) BatchNorm is folded into the convolution's
weight and bias at once; in training mode (quantization-aware training) Conv+BN stays a
`ConvBn2d` / `ConvBnReLU2d` that `prepare_qat` turns into a module simulating the fold.
A fused module quantizes as one op (one requantisation, the ReLU in the epilogue).
"""
from __future__ import annotations

import copy

from ..autograd.function import no_grad
from .. import nn

__all__ = ["ConvReLU2d", "LinearReLU", "ConvBn2d", "ConvBnReLU2d", "fold_bn", "fuse_modules"]


class ConvReLU2d(nn.Sequential):
    """Conv2d then ReLU, quantized as one op."""


class LinearReLU(nn.Sequential):
    """Linear then ReLU, quantized as one op."""


class ConvBn2d(nn.Sequential):
    """Conv2d then BatchNorm2d kept apart for QAT (folded at convert)."""


class ConvBnReLU2d(nn.Sequential):
    """Conv2d, BatchNorm2d, ReLU kept apart for QAT (folded at convert)."""


def fold_bn(conv, bn):
    """A copy of `conv` (Conv2d or Linear) with eval-mode `bn` folded in:
    w' = w * g / sqrt(var + eps) per output channel, b' = (b - mean) * g / sqrt(var + eps)
    + beta."""
    if bn.running_mean is None:
        raise ValueError("fold_bn: the BatchNorm tracks no running statistics to fold")
    out = copy.deepcopy(conv)
    with no_grad():
        inv = (bn.running_var + bn.eps).rsqrt()
        g = bn.weight * inv if bn.weight is not None else inv
        shape = (-1,) + (1,) * (conv.weight.ndim - 1)
        out.weight.copy_(conv.weight * g.reshape(shape))
        b = conv.bias if conv.bias is not None else bn.running_mean * 0
        nb = (b - bn.running_mean) * g + (bn.bias if bn.bias is not None else 0)
        if out.bias is None:
            out.bias = nn.Parameter(nb.detach().clone())
        else:
            out.bias.copy_(nb)
    return out


def get_submodule(model: nn.Module, name: str) -> nn.Module:
    """The sub-module at dotted path `name`."""
    m = model
    for part in name.split("."):
        if part not in m._modules:
            raise KeyError(f"fuse_modules: {type(m).__name__} has no sub-module {part!r} "
                           f"(path {name!r})")
        m = m._modules[part]
    return m


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the sub-module at dotted path `name`."""
    parent, _, last = name.rpartition(".")
    replace_child(get_submodule(model, parent) if parent else model, last, new)


def replace_child(parent: nn.Module, name: str, new: nn.Module) -> None:
    """parent.<name> = new for an existing child (it keeps its place among the children)."""
    if name not in parent._modules:
        raise KeyError(f"{type(parent).__name__} has no sub-module {name!r}")
    setattr(parent, name, new)


def _fuse(mods: list, training: bool) -> nn.Module:
    kinds = tuple(type(m) for m in mods)
    C, B, R, L = nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear
    if kinds == (C, B):
        return ConvBn2d(*mods) if training else fold_bn(*mods)
    if kinds == (C, B, R):
        return ConvBnReLU2d(*mods) if training else ConvReLU2d(fold_bn(mods[0], mods[1]), mods[2])
    if kinds == (C, R):
        return ConvReLU2d(*mods)
    if kinds == (L, R):
        return LinearReLU(*mods)
    if kinds == (L, nn.BatchNorm1d) and not training:
        return fold_bn(*mods)
    raise ValueError(f"fuse_modules: cannot fuse {[k.__name__ for k in kinds]} (supported: "
                     "Conv2d+BatchNorm2d[+ReLU], Conv2d+ReLU, Linear+ReLU, Linear+BatchNorm1d)")


def fuse_modules(model: nn.Module, modules_to_fuse: list, inplace: bool = False) -> nn.Module:
    """Fuse each list of dotted sub-module names (``[["0", "1", "2"], ["9", "10"]]``): the
    first becomes the fused module, the others Identity.  Folds BatchNorm when the model
    is in eval mode; keeps it (ConvBn2d, ConvBnReLU2d) in training mode, for QAT."""
    if not inplace:
        model = copy.deepcopy(model)
    for group in modules_to_fuse:
        mods = [get_submodule(model, n) for n in group]
        fused = _fuse(mods, model.training)
        set_submodule(model, group[0], fused)
        for n in group[1:]:
            set_submodule(model, n, nn.Identity())
    return model
