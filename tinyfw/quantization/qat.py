"""Modules for quantization-aware training: the float layer with its weight passed
through a FakeQuantize; Conv+BatchNorm simulate the fold that convert will make.

`QATConvBn2d` follows the scheme PyTorch uses: the weight is scaled by
gamma / sqrt(running_var + eps) (the folded weight), fake-quantized, convolved, and the
scaling is divided out again before the BatchNorm itself, which keeps normalising with
batch statistics (and updating its running ones) while training.  The forward thus sees
the rounding of the folded int8 weight, and BatchNorm still trains.
"""
from __future__ import annotations


from .. import nn
from ..autograd.function import no_grad
from ..nn import functional as F
from .fuse import ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearReLU, fold_bn

__all__ = ["QATModule", "QATLinear", "QATConv2d", "QATConvBn2d", "qat_module"]


class QATModule(nn.Module):
    """Base of the QAT modules: ``folded()`` is the float layer convert quantizes."""

    relu = False

    def folded(self) -> nn.Module:
        raise NotImplementedError


class QATLinear(QATModule):
    """Linear (+ReLU) with a fake-quantized weight."""

    def __init__(self, linear: nn.Linear, qconfig, relu: bool = False):
        super().__init__()
        self.linear, self.relu, self.qconfig = linear, relu, qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, x):
        y = F.linear(x, self.weight_fake_quant(self.linear.weight), self.linear.bias)
        return y.relu() if self.relu else y

    def folded(self) -> nn.Module:
        return self.linear


class QATConv2d(QATModule):
    """Conv2d (+ReLU) with a fake-quantized weight."""

    def __init__(self, conv: nn.Conv2d, qconfig, relu: bool = False):
        super().__init__()
        self.conv, self.relu, self.qconfig = conv, relu, qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, x):
        c = self.conv
        y = F.conv2d(x, self.weight_fake_quant(c.weight), c.bias, c.stride, c.padding,
                     c.dilation, c.groups)
        return y.relu() if self.relu else y

    def folded(self) -> nn.Module:
        return self.conv


class QATConvBn2d(QATModule):
    """Conv2d + BatchNorm2d (+ReLU) training with the fold simulated (module doc)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, qconfig, relu: bool = False):
        super().__init__()
        self.conv, self.bn, self.relu, self.qconfig = conv, bn, relu, qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, x):
        c, bn = self.conv, self.bn
        std = (bn.running_var + bn.eps).sqrt()
        factor = bn.weight / std
        w = self.weight_fake_quant(c.weight * factor.reshape(-1, 1, 1, 1))
        y = F.conv2d(x, w, None, c.stride, c.padding, c.dilation, c.groups)
        y = y / factor.reshape(1, -1, 1, 1)
        if c.bias is not None:
            y = y + c.bias.reshape(1, -1, 1, 1)
        y = bn(y)
        return y.relu() if self.relu else y

    def folded(self) -> nn.Module:
        with no_grad():
            return fold_bn(self.conv, self.bn)


def qat_module(mod: nn.Module, qconfig) -> nn.Module | None:
    """The QAT replacement of a float (or fused) module, or None when it has none."""
    if type(mod) is nn.Linear:
        return QATLinear(mod, qconfig)
    if type(mod) is nn.Conv2d:
        return QATConv2d(mod, qconfig)
    if isinstance(mod, LinearReLU):
        return QATLinear(mod[0], qconfig, relu=True)
    if isinstance(mod, ConvReLU2d):
        return QATConv2d(mod[0], qconfig, relu=True)
    if isinstance(mod, ConvBnReLU2d):
        return QATConvBn2d(mod[0], mod[1], qconfig, relu=True)
    if isinstance(mod, ConvBn2d):
        return QATConvBn2d(mod[0], mod[1], qconfig)
    return None


