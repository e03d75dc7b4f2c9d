"""The Module methods that read or rewrite the tensors of the parameter and buffer tables
as a whole: device and dtype conversion (``to``, ``cpu``, ``cuda``, ``to_empty``, ``float``,
``half``, ...) and the state dict (``state_dict``, ``load_state_dict``).

Part of `tinyfw.nn.modules.module`: `Module` inherits them from `_StateMixin`; import
`Module` from there.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, NamedTuple

from ... import dtypes as _dt
from ...autograd.function import no_grad
from ...backend import host
from ...creation import empty, tensor
from ...device import Device, as_device
from ...tensor import Tensor

if TYPE_CHECKING:
    from .module import Module


class _IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")


class _StateMixin:
    """State dict and device/dtype conversion for `Module` (which defines the tables they
    walk)."""

    # -- device and dtype conversions -----------------------------------------------
    def _convert(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Apply fn to every parameter, gradient and buffer, in place (PyTorch's _apply)."""
        with no_grad():
            for m in self.modules():
                for p in m._parameters.values():
                    if p is None:
                        continue
                    new = fn(p)
                    if new is not p:
                        # keep the Parameter object (optimizers hold it); swap its storage
                        p._data = new._data
                        p._version[0] += 1
                    if p._grad is not None:
                        g = fn(p._grad)
                        if g is not p._grad:
                            p._grad = Tensor._make(g._data)
                for name, b in m._buffers.items():
                    if b is not None:
                        m._buffers[name] = fn(b)
        return self

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False) -> "Module":
        """Move parameters and buffers to `device` and/or cast the floating-point ones to
        `dtype`, in place (returns self): ``to(device)``, ``to(dtype)``,
        ``to(device, dtype)``, ``to(tensor)`` (its device and dtype).  The Parameter objects
        stay the same (an optimizer holding them keeps working); their data moves, as in
        PyTorch.  A model on the meta device has no data to move: use `to_empty`."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, _dt.DType) or (isinstance(a, str) and a in _dt._by_name):
                dtype = a
            else:
                device = a
        if device is not None:
            device = as_device(device)
        if dtype is not None:
            dtype = _dt.as_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(f"Module.to: only floating-point dtypes are accepted, got "
                                f"{dtype.name}")
        if dtype is None and device is None:
            return self

        def convert(t: Tensor) -> Tensor:
            if dtype is not None and t.dtype.is_floating_point and t.dtype is not dtype:
                t = t.to(dtype)
            if device is not None and t.device != device:
                if t.device.type == "meta":
                    raise RuntimeError(f"Module.to: a tensor of shape {tuple(t.shape)} is on "
                                       "the meta device and has no data to move; use "
                                       f"to_empty(device='{device}') and then initialise or "
                                       "load_state_dict")
                t = t.to(device)
            return t

        return self._convert(convert)

    def to_empty(self, *, device, recurse: bool = True) -> "Module":
        """Give every parameter and buffer new, uninitialised memory on `device` (zeros
        here), keeping shapes and dtypes: how a model built on the meta device becomes
        real.  Initialise it afterwards (``reset_parameters()`` of each layer, or
        ``load_state_dict``).  `recurse` is accepted for PyTorch compatibility (sub-modules
        are always included)."""
        dev = as_device(device)
        return self._convert(lambda t: empty(t.shape, dtype=t.dtype, device=dev))

    def cpu(self) -> "Module":
        """Move parameters and buffers to the CPU (in place; returns self)."""
        return self.to(device="cpu")

    def cuda(self, device: int | str | Device | None = None) -> "Module":
        """Move parameters and buffers to a CUDA device (index 0 by default)."""
        return self.to(device=Device("cuda", device) if isinstance(device, int) or device is None
                       else device)

    def float(self) -> "Module":
        """Cast floating-point parameters and buffers to float32."""
        return self.to(_dt.float32)

    def double(self) -> "Module":
        """Cast floating-point parameters and buffers to float64."""
        return self.to(_dt.float64)

    def half(self) -> "Module":
        """Cast floating-point parameters and buffers to float16."""
        return self.to(_dt.float16)

    def bfloat16(self) -> "Module":
        """Cast floating-point parameters and buffers to bfloat16."""
        return self.to(_dt.bfloat16)

    # -- state dict -----------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Every parameter and persistent buffer by qualified name, as tensors sharing the
        module's memory (detached unless keep_vars)."""
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_slots(self) -> dict:
        """qualified name -> (owning module, table, local name) for the state dict keys."""
        slots = {}
        for mprefix, m in self.named_modules(remove_duplicate=False):
            pre = mprefix + "." if mprefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    slots[pre + name] = (m, "_parameters", name)
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent_buffers:
                    slots[pre + name] = (m, "_buffers", name)
        return slots

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> _IncompatibleKeys:
        """Copy values from `state_dict` (tensors or numpy arrays) into the parameters and
        buffers, cast to their dtype and moved to their device (with `assign`, the given
        tensors replace them instead, keeping their own device).  Shapes must match; with
        strict, keys must match exactly.  All checks run before anything is written, so a
        failed load leaves the module unchanged.  Returns (missing_keys, unexpected_keys)."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state_dict).__name__}")
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ".")
        values = {}
        for key, (m, table, name) in slots.items():
            if key not in state_dict:
                continue
            v = state_dict[key]
            if host.is_host_array(v):
                v = tensor(v, device="cpu")
            if not isinstance(v, Tensor):
                errors.append(f'For "{key}": expected a Tensor or numpy array, got '
                              f"{type(v).__name__}.")
                continue
            cur = m.__dict__[table][name]
            # a lazy module's uninitialized parameter takes the checkpoint's shape (below)
            if not hasattr(cur, "materialize") and tuple(v.shape) != tuple(cur.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(v.shape)} from checkpoint, the shape in current model is "
                              f"{tuple(cur.shape)}.")
                continue
            values[key] = v
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for key, v in values.items():
                m, table, name = slots[key]
                cur = m.__dict__[table][name]
                if hasattr(cur, "materialize"):
                    cur.materialize(tuple(v.shape))
                if assign:
                    v = v.detach()
                    if table == "_parameters":
                        from .module import Parameter  # module.py imports this file

                        v = Parameter(v, cur.requires_grad)
                    m.__dict__[table][name] = v
                else:
                    cur.copy_(v.detach())  # moves and casts
        for m in self.modules():
            if hasattr(m, "_lazy_loaded"):
                m._lazy_loaded()
        return _IncompatibleKeys(missing, unexpected)
