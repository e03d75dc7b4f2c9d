"""The padding layers: Constant/Zero/Reflection/Replication/CircularPad{1,2,3}d, each a
fixed F.pad call.  `padding` is an int (every side) or a tuple of 2, 4 or 6 ints in F.pad's
order (last dim first: left, right, top, bottom, front, back); negative entries crop."""
from __future__ import annotations

from numbers import Integral

from ...tensor import Tensor
from .. import functional as F
from .module import Module


class _PadNd(Module):
    _nd = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        op, n = type(self).__name__, self._nd
        if isinstance(padding, Integral) and not isinstance(padding, bool):
            padding = (int(padding),) * (2 * n)
        padding = tuple(padding)
        if len(padding) != 2 * n or not all(isinstance(p, Integral) for p in padding):
            raise ValueError(f"{op}: padding must be an int or {2 * n} ints, got {padding!r}")
        self.padding = tuple(int(p) for p in padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        """F.pad(input, padding, mode) (with `value` in constant mode)."""
        n = self._nd
        if self._mode == "circular" and input.ndim not in (n + 1, n + 2):
            raise ValueError(f"{type(self).__name__}: expected a {n + 1}-d or {n + 2}-d input, "
                             f"got shape {tuple(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _layer(name: str, nd: int, mode: str, zero: bool = False):
    doc = (f"Pads the last {nd} dim(s) {'with zeros' if zero else f'in {mode} mode'} "
           f"(F.pad); padding: an int or {2 * nd} ints, last dim first.")
    body = {"_nd": nd, "_mode": mode, "__doc__": doc, "__module__": __name__}
    if zero:
        body["__init__"] = lambda self, padding: _PadNd.__init__(self, padding, 0.0)
    elif mode != "constant":
        body["__init__"] = lambda self, padding: _PadNd.__init__(self, padding)
    else:
        body["__init__"] = lambda self, padding, value: _PadNd.__init__(self, padding, value)
    return type(name, (_PadNd,), body)


ConstantPad1d = _layer("ConstantPad1d", 1, "constant")
ConstantPad2d = _layer("ConstantPad2d", 2, "constant")
ConstantPad3d = _layer("ConstantPad3d", 3, "constant")
ZeroPad1d = _layer("ZeroPad1d", 1, "constant", zero=True)
ZeroPad2d = _layer("ZeroPad2d", 2, "constant", zero=True)
ZeroPad3d = _layer("ZeroPad3d", 3, "constant", zero=True)
ReflectionPad1d = _layer("ReflectionPad1d", 1, "reflect")
ReflectionPad2d = _layer("ReflectionPad2d", 2, "reflect")
ReflectionPad3d = _layer("ReflectionPad3d", 3, "reflect")
ReplicationPad1d = _layer("ReplicationPad1d", 1, "replicate")
ReplicationPad2d = _layer("ReplicationPad2d", 2, "replicate")
ReplicationPad3d = _layer("ReplicationPad3d", 3, "replicate")
CircularPad1d = _layer("CircularPad1d", 1, "circular")
CircularPad2d = _layer("CircularPad2d", 2, "circular")
CircularPad3d = _layer("CircularPad3d", 3, "circular")

__all__ = [n for n in dir() if n.endswith(("Pad1d", "Pad2d", "Pad3d"))]
