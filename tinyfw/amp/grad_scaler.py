"""`GradScaler`: dynamic loss scaling for float16 training, with PyTorch's semantics.

float16 gradients of small magnitude underflow to zero.  The scaler multiplies the loss
by a large factor before backward (``scale``), divides the gradients by it before the
optimizer uses them (``unscale_``, done by ``step`` if the user did not, e.g. to clip
first), skips the step when any gradient is inf/NaN (the scale was too large), and adapts
the scale (``update``): times ``backoff_factor`` after a skipped step, times
``growth_factor`` after ``growth_interval`` clean steps in a row.

The scale is a float32 value (PyTorch keeps a 0-d float32 tensor): every update is
rounded to float32 as PyTorch's kernel stores it, so sequences agree bit for bit.  The
per-optimizer bookkeeping (unscaled already? stepped?) lives here, keyed by the
optimizer, and is reset by ``update``.  ``state_dict`` holds plain numbers, so a
checkpoint made with ``tinyfw.save`` resumes exactly.
"""
from __future__ import annotations

import math
import struct
from typing import Any

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..creation import tensor
from ..device import Device
from ..tensor import Tensor

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


def _f32(x: float) -> float:
    """x rounded to the nearest float32 (inf when out of range), as a Python float."""
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # beyond float32's range: rounds to inf
        return math.copysign(math.inf, x)


class GradScaler:
    """Dynamic loss scaling (``tinyfw.amp.GradScaler``), as ``torch.amp.GradScaler``.

    Typical use with float16 autocast::

        scaler = tinyfw.amp.GradScaler()
        for x, y in data:
            opt.zero_grad()
            with tinyfw.autocast("cpu", dtype=tinyfw.float16):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)            # optional: clip gradients after it
            scaler.step(opt)                # skipped when a gradient is inf/NaN
            scaler.update()
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self.device = Device(device) if not isinstance(device, Device) else device
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got "
                             f"{backoff_factor}")
        if not isinstance(growth_interval, int) or growth_interval <= 0:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval!r}")
        if not init_scale > 0:
            raise ValueError(f"GradScaler: init_scale must be positive, got {init_scale}")
        self._enabled = bool(enabled)
        self._scale = _f32(float(init_scale))
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        # id(optimizer) -> [optimizer, stage, found_inf or None]
        self._per_optimizer: dict[int, list] = {}

    # -- the training step -------------------------------------------------------------
    def scale(self, outputs):
        """`outputs` (a tensor, or a list/tuple of them, nested) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * tensor(self._scale, dtype=_dt.float32, device=outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a Tensor or a list/tuple of Tensors, "
                        f"got {type(outputs).__name__}")

    def _opt_state(self, optimizer) -> list:
        st = self._per_optimizer.get(id(optimizer))
        if st is None or st[0] is not optimizer:
            st = self._per_optimizer[id(optimizer)] = [optimizer, _READY, None]
        return st

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of `optimizer`'s parameters by the scale, in place, and
        note whether any is inf/NaN.  At most once per optimizer between updates."""
        if not self._enabled:
            return
        st = self._opt_state(optimizer)
        if st[1] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if st[1] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        # PyTorch: the reciprocal in float64, rounded to float32
        inv = _f32(1.0 / self._scale)
        flags = []
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if g.dtype is _dt.float16:
                        raise ValueError("GradScaler: attempting to unscale float16 gradients "
                                         "(a float16 parameter); keep parameters in float32 "
                                         "and run the forward under autocast, as PyTorch "
                                         "requires")
                    flags.append((~g.isfinite()).any())
                    g.mul_(inv)
        found = False
        if flags:  # one read of the device for all parameters
            acc = flags[0]
            for f in flags[1:]:
                acc = acc | f
            found = bool(acc.item())
        st[1], st[2] = _UNSCALED, found

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless done) and run ``optimizer.step()`` unless a gradient was
        inf/NaN; returns what step returned, None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        st = self._opt_state(optimizer)
        if st[1] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st[1] == _READY:
            self.unscale_(optimizer)
        if st[2] is None or not any(p.grad is not None for g in optimizer.param_groups
                                    for p in g["params"]):
            raise RuntimeError("No inf checks were recorded for this optimizer (none of its "
                               "parameters has a gradient).")
        ret = None if st[2] else optimizer.step(*args, **kwargs)
        st[1] = _STEPPED
        return ret

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adapt the scale from the steps since the last update (or set `new_scale`), and
        reset the per-optimizer bookkeeping."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.dtype is not _dt.float32:
                    raise ValueError("GradScaler.update: new_scale must be a float32 tensor "
                                     "of one element or a Python float")
                new_scale = new_scale.item()
            self._scale = _f32(float(new_scale))
        else:
            found = [st[2] for st in self._per_optimizer.values() if st[2] is not None]
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update().")
            if any(found):
                self._scale = _f32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = _f32(self._scale * self._growth_factor)
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    # -- settings and checkpoints ----------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, value: float) -> None:
        self._growth_factor = float(value)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, value: float) -> None:
        self._backoff_factor = float(value)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, value: int) -> None:
        self._growth_interval = int(value)

    def is_enabled(self) -> bool:
        """Whether scaling is on (``enabled=False`` makes every method a pass-through)."""
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """scale, factors, interval and the count of clean steps (empty when disabled),
        as PyTorch's."""
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (exact resume of the scale sequence)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                   "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {sorted(missing)}")
        self._scale = _f32(float(state_dict["scale"]))
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
