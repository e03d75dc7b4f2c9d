"""The quantization workflows, shaped like ``torch.ao.quantization``:

- static post-training: ``prepare(model)`` → run calibration data → ``convert(model)``;
- quantization-aware training: ``prepare_qat(model)`` → train → ``convert(model)``;
- dynamic: ``quantize_dynamic(model, {nn.Linear})``.

The model marks its quantized region with QuantStub/DeQuantStub (or is wrapped in
`QuantWrapper`); BatchNorm must be fused into the preceding conv first (`fuse_modules`).
"""
from __future__ import annotations

import copy

from .. import nn
from .fake_quantize import QConfig, default_qat_qconfig, default_qconfig
from .fuse import ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearReLU, replace_child
from .qat import QATConv2d, QATConvBn2d, QATLinear, QATModule, qat_module
from .qmodules import (DeQuantize, DeQuantStub, DynamicQuantizedLinear, FloatFunctional,
                       QFunctional, Quantize, QuantizedAvgPool2d, QuantizedConv2d,
                       QuantizedLinear, QuantizedMaxPool2d, QuantizedReLU, QuantStub)

__all__ = ["prepare", "convert", "prepare_qat", "quantize_dynamic"]

# modules whose output gets its own scale and zero point (an observer after them)
_OBSERVED = (QuantStub, nn.Linear, nn.Conv2d, ConvReLU2d, LinearReLU, FloatFunctional,
             QATModule)
# modules that are leaves for the walk (fused containers included)
_LEAVES = _OBSERVED + (ConvBn2d, ConvBnReLU2d)


def _observe_hook(mod, inputs, out):
    return mod.activation_post_process(out)


def _add_observers(model: nn.Module, qconfig: QConfig) -> None:
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        if isinstance(child, _OBSERVED):
            child.qconfig = qconfig
            child.activation_post_process = qconfig.activation()
            if not isinstance(child, FloatFunctional):  # it observes inside add()
                child.register_forward_hook(_observe_hook)
        elif not isinstance(child, _LEAVES):
            _add_observers(child, qconfig)


def prepare(model: nn.Module, qconfig: QConfig = default_qconfig,
            inplace: bool = False) -> nn.Module:
    """A copy of the (eval-mode, fused) model with an observer after each quantizable
    module; run representative data through it, then `convert`."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    _add_observers(model, qconfig)
    return model


def _swap_qat(model: nn.Module, qconfig: QConfig) -> None:
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        new = qat_module(child, qconfig)
        if new is not None:
            replace_child(model, name, new)
        elif not isinstance(child, _LEAVES):
            _swap_qat(child, qconfig)


def prepare_qat(model: nn.Module, qconfig: QConfig = default_qat_qconfig,
                inplace: bool = False) -> nn.Module:
    """A copy of the (training-mode, fused) model for quantization-aware training: weights
    fake-quantized per channel, a FakeQuantize after each quantizable module."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    _swap_qat(model, qconfig)
    _add_observers(model, qconfig)
    return model


def _quantized(child: nn.Module) -> nn.Module | None:
    if isinstance(child, QuantStub):
        return Quantize.from_float(child)
    if isinstance(child, DeQuantStub):
        return DeQuantize()
    if isinstance(child, FloatFunctional):
        return QFunctional.from_float(child)
    if isinstance(child, (QATLinear, LinearReLU)) or type(child) is nn.Linear:
        return QuantizedLinear.from_float(child)
    if isinstance(child, (QATConv2d, QATConvBn2d, ConvReLU2d)) or type(child) is nn.Conv2d:
        return QuantizedConv2d.from_float(child)
    if isinstance(child, nn.ReLU):
        return QuantizedReLU()
    if isinstance(child, nn.MaxPool2d):
        if child.return_indices:
            raise ValueError("convert: a quantized MaxPool2d returns no indices")
        return QuantizedMaxPool2d(child)
    if isinstance(child, nn.AvgPool2d):
        return QuantizedAvgPool2d(child)
    if isinstance(child, nn.Dropout):
        return nn.Identity()
    if isinstance(child, (nn.BatchNorm2d, nn.BatchNorm1d, ConvBn2d, ConvBnReLU2d)):
        raise ValueError(f"convert: {type(child).__name__} cannot be quantized alone; fuse "
                         "BatchNorm into the preceding conv (fuse_modules) before prepare")
    return None


def _convert(model: nn.Module) -> None:
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        if isinstance(child, _LEAVES) and not hasattr(child, "qconfig"):
            continue  # outside the quantized region (no qconfig): stays float
        new = _quantized(child)
        if new is not None:
            replace_child(model, name, new)
        else:
            _convert(child)


def convert(model: nn.Module, inplace: bool = False) -> nn.Module:
    """A copy of the prepared (and calibrated or QAT-trained) model with each module
    replaced by its quantized form, in eval mode."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    _convert(model)
    return model


def quantize_dynamic(model: nn.Module, qconfig_spec=None, inplace: bool = False) -> nn.Module:
    """A copy of the model with each module of the types in `qconfig_spec` (default
    ``{nn.Linear, nn.LSTM}``) replaced by its dynamically quantized form: int8 weights,
    each input quantized when it arrives (per batch; per time step for the LSTM's hidden
    state), float output."""
    from .qrnn import DynamicQuantizedLSTM

    swap = {nn.Linear: DynamicQuantizedLinear, nn.LSTM: DynamicQuantizedLSTM}
    types = set(qconfig_spec or swap)
    unsupported = types - set(swap)
    if unsupported:
        raise NotImplementedError(f"quantize_dynamic: {sorted(t.__name__ for t in unsupported)} "
                                  "not supported (nn.Linear and nn.LSTM are)")
    if not inplace:
        model = copy.deepcopy(model)

    def walk(m):
        for name, child in list(m._modules.items()):
            if type(child) in types:
                replace_child(m, name, swap[type(child)].from_float(child))
            elif child is not None:
                walk(child)

    if type(model) in types:
        return swap[type(model)].from_float(model)
    walk(model)
    return model
