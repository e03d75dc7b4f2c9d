"""`Optimizer`: parameter groups, per-parameter state, state_dict, and the update loop.

Subclasses describe one algorithm by three things: their defaults, the state buffers a
parameter needs (`_init_state`), and the call of their fused backend primitive
(`_update`).  The base class does everything else the same way for all of them:

- each parameter's update is ONE call of a backend primitive (``sgd_step``,
  ``adam_step`` ...) on raw contiguous arrays, run under no_grad; the parameter's version
  counter is bumped afterwards so autograd notices the in-place write;
- float16/bfloat16 parameters are updated through a float32 master copy kept in the
  state (``state[p]["master"]``), and rounded back once per step (mixed precision);
- devices: the kernel is the parameter's backend's; state buffers are made on the
  parameter's device (as PyTorch's ``zeros_like(param)``).  If a parameter moves after its
  state exists (``model.to(device)`` between steps), the next step moves the state along
  with it (PyTorch would fail with a device mismatch there); the step count stays a 0-d
  CPU float32 tensor, as PyTorch keeps it;
- ``state_dict()`` follows PyTorch's layout: ``{"state": {index: {...}}, "param_groups":
  [{..., "params": [index, ...]}]}`` with parameters numbered in group order.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .. import dtypes as _dt
from ..autograd.function import GradMode, _GradModeContext
from ..backend import backend_of, device_of
from ..creation import full
from ..device import cpu
from ..tensor import Tensor

_LOW = (_dt.float16.np, _dt.bfloat16.np)


class _Required:
    """Marks a hyperparameter with no default (lr for SGD)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of all optimizers: holds `param_groups` and per-parameter `state`."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            "of dicts, got a single Tensor; wrap it in a list")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

    # -- groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take the
        optimizer's defaults), e.g. to unfreeze layers during fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("add_param_group: parameters must be an ordered collection (list, "
                            "tuple), not a set, so that state_dict indices are stable")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, but "
                                f"parameter {i} is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor "
                                 f"(parameter {i}, shape {tuple(p.shape)})")
            if not p.dtype.is_floating_point:
                raise TypeError(f"{type(self).__name__}: parameter {i} has dtype "
                                f"{p.dtype.name}; only floating-point tensors can be optimized")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: a parameter group contains the same "
                             "parameter more than once")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify a "
                                 f"value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one "
                             "parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyperparameters (subclasses raise ValueError naming them)."""

    # -- gradients --------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: drop it (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    g = p._grad
                    if g.grad_fn is not None:
                        p._grad = g = g.detach()
                    B = backend_of(g._data)
                    if B.is_writeable(g._data):
                        B.fill_(g._data, 0)
                    else:  # e.g. an expanded gradient: give it its own memory
                        g._data = B.full(g.shape, 0, g._data.dtype)
                    g._version[0] += 1

    # -- the update -------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; `closure` (re-evaluating the model
        and returning the loss) is called first, with gradients enabled, if given."""
        loss = None
        if closure is not None:
            with _GradModeContext(True):
                loss = closure()
        prev = GradMode.enabled
        GradMode.enabled = False
        try:
            for group in self.param_groups:
                for p in group["params"]:
                    if p._grad is not None:
                        self._step_param(p, group)
        finally:
            GradMode.enabled = prev
        return loss

    def _step_param(self, p: Tensor, group: dict[str, Any]) -> None:
        data = p._data
        B = backend_of(data)
        low = data.dtype in _LOW
        grad = p._grad._data
        dev = device_of(data)
        if device_of(grad) is not dev and device_of(grad) != dev:
            raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape "
                               f"{tuple(p.shape)} is on {dev} but its gradient is on "
                               f"{device_of(grad)}")
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {}
            if low:
                state["master"] = p.detach().float()  # a copy: p is half
            self._init_state(state, p, group)
        else:
            _follow(state, dev)
        if low:
            work = state["master"]._data
        elif B.is_contiguous(data) and B.is_writeable(data):
            work = data
        else:
            work = B.contiguous(data)
        if grad.dtype != work.dtype:
            grad = B.cast(grad, work.dtype)
        if not B.is_contiguous(grad):
            grad = B.contiguous(grad)
        self._update(B, work, grad, state, group)
        if work is not data:
            if not B.is_writeable(data):
                raise RuntimeError(f"{type(self).__name__}.step: parameter of shape "
                                   f"{tuple(p.shape)} is a read-only view and cannot be updated")
            B.copy_(data, work)
        p._version[0] += 1

    def _init_state(self, state: dict[str, Any], p: Tensor, group: dict[str, Any]) -> None:
        """Create the state buffers of parameter p (in the dtype its update runs in)."""
        raise NotImplementedError

    def _update(self, B, param, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Apply one update to the contiguous array `param` of backend `B` (one call of
        B's fused primitive; `grad` and the state buffers are B's arrays too)."""
        raise NotImplementedError

    @staticmethod
    def _buffer(p: Tensor, fill: float = 0.0) -> Tensor:
        """A state buffer shaped like p, on p's device, in p's update dtype (float32 for
        half types)."""
        dt = _dt.float32 if p._data.dtype in _LOW else p.dtype
        return full(p.shape, fill, dtype=dt, device=p.device)

    @staticmethod
    def _zeros(arr) -> Tensor:
        """A zero state buffer shaped and typed like the raw update array `arr`, on its
        device (for buffers created lazily inside `_update`)."""
        return Tensor._make(backend_of(arr).full(arr.shape, 0, arr.dtype))

    @staticmethod
    def _step_tensor(count: float = 0.0) -> Tensor:
        # PyTorch keeps the step count as a float32 scalar tensor on the CPU; so do we
        # (state dicts look alike, counts stay exact up to 2**24, and reading it never
        # waits for a device)
        return full((), count, dtype=_dt.float32, device=cpu)

    @staticmethod
    def _count(state: dict[str, Any]) -> int:
        """Add one to state["step"] and return the new count."""
        st = state["step"]
        n = st.item() + 1
        backend_of(st._data).fill_(st._data, n)
        st._version[0] += 1
        return int(n)

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (copies of the buffers) and hyperparameters, with
        parameters replaced by their index in group order (PyTorch's layout)."""
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach().clone()
                                               if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by `state_dict` (group and parameter
        counts must match; buffers are copied and cast to each parameter's update dtype)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups' (as returned by state_dict())")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has "
                             f"{len(saved_groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded parameter group {i} has "
                                 f"{len(s['params'])} parameters, the optimizer's has "
                                 f"{len(g['params'])}")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, idx in zip(g["params"], s["params"]):
                id_map[idx] = p
        saved_state = state_dict["state"]
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, st in saved_state.items():
            k = int(key)
            if k not in id_map:
                raise ValueError(f"{name}.load_state_dict: state for parameter index {k} "
                                 "does not belong to any parameter group")
            p = id_map[k]
            new_state[p] = {n: self._load_value(n, v, p) for n, v in st.items()}
        self.state = new_state
        for g, s in zip(self.param_groups, saved_groups):
            for k, v in s.items():
                if k != "params":
                    g[k] = tuple(v) if isinstance(v, list) and k == "betas" else v

    def _load_value(self, key: str, value: Any, p: Tensor) -> Any:
        # buffers are copied onto their parameter's device in its update dtype, as
        # PyTorch's load_state_dict does
        if not isinstance(value, Tensor):
            return value
        if key == "step":
            if value.numel() != 1:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state 'step' has "
                                 f"shape {tuple(value.shape)}; expected one count")
            return self._step_tensor(float(value.item()))
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{type(self).__name__}.load_state_dict: state '{key}' has shape "
                             f"{tuple(value.shape)} but its parameter has shape {tuple(p.shape)}")
        dt = _dt.float32 if p._data.dtype in _LOW else p.dtype
        return value.detach().to(device=p.device, dtype=dt, copy=True)


def _follow(state: dict[str, Any], dev) -> None:
    """Move a parameter's state buffers to `dev`, its device now (after model.to(device));
    the step count stays on the CPU."""
    for k, v in state.items():
        if type(v) is Tensor and k != "step":
            d = device_of(v._data)
            if d is not dev and d != dev:
                state[k] = v.to(dev)


def _check_nonneg(opt: str, **values: float) -> None:
    """Raise ValueError naming the first negative hyperparameter."""
    for k, v in values.items():
        if not v >= 0.0:
            raise ValueError(f"{opt}: invalid {k} value: {v} (must be >= 0)")
