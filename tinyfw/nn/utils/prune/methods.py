"""`tinyfw.nn.utils.prune`: magnitude, random and structured pruning with PyTorch's
semantics (masks are checked against ``torch.nn.utils.prune``).

Pruning parameter ``name`` of a module moves it to ``name + "_orig"``, stores a
``name + "_mask"`` buffer and registers a forward pre-hook that sets ``module.<name> =
<name>_orig * <name>_mask`` before every forward; pruning again combines the new mask
with the old one, computed on what is left (`PruningContainer`); `remove` makes the
pruning permanent.  Physical shrinking after structured pruning is `shrink.py`; the
iterative schedule and the sparsity report are `schedule.py`.
"""
from __future__ import annotations

import numbers

from ....autograd.function import no_grad
from ....creation import ones_like, zeros_like
from ....ops.index import topk
from ....tensor import Tensor
from ...modules.module import Module, Parameter

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured",
           "L1Unstructured", "LnStructured", "CustomFromMask", "identity",
           "random_unstructured", "l1_unstructured", "ln_structured", "global_unstructured",
           "custom_from_mask", "remove", "is_pruned"]


def _check_amount(amount) -> None:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"prune: amount must be an int or a float, got {amount!r}")
    if (isinstance(amount, numbers.Integral) and amount < 0) or \
            (not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0):
        raise ValueError(f"prune: amount={amount} should either be a float in [0, 1] or a "
                         "non-negative integer")


def _n_to_prune(amount, size: int) -> int:
    n = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if n > size:
        raise ValueError(f"prune: amount={amount} is more than the {size} units to prune")
    return int(n)


def _where(flags: Tensor) -> Tensor:
    """The int64 positions where the 1-d bool `flags` is true, in order."""
    from ....creation import arange

    return arange(flags.shape[0], device=flags.device)[flags]


class BasePruningMethod:
    """A pruning method: ``compute_mask(t, default_mask)`` gives the new mask; the class
    method ``apply(module, name, ...)`` installs it; the instance is the pre-hook."""

    PRUNING_TYPE = "unstructured"
    _tensor_name: str

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    def apply_mask(self, module: Module) -> Tensor:
        """``<name>_orig * <name>_mask``."""
        name = self._tensor_name
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")

    @classmethod
    def apply(cls, module: Module, name: str, *args, importance_scores=None, **kwargs):
        """Prune `module.<name>` with a new `cls(*args, **kwargs)` (see module doc)."""
        old = None
        for k, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                old = hook
                del module._forward_pre_hooks[k]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old is not None:
            container = old if isinstance(old, PruningContainer) else PruningContainer(old)
            container.add_pruning_method(method)
            method = container
        orig = getattr(module, name)
        scores = orig if importance_scores is None else importance_scores
        if tuple(scores.shape) != tuple(orig.shape):
            raise ValueError(f"prune: importance_scores of shape {tuple(scores.shape)} do not "
                             f"match {name} of shape {tuple(orig.shape)}")
        first = old is None
        if first:
            if name not in module._parameters:
                raise ValueError(f"prune: {type(module).__name__} has no parameter {name!r}")
            del module._parameters[name]
            module.register_parameter(name + "_orig", orig)
            default = ones_like(orig)
        else:
            default = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(scores.detach(), default)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:
                del module._parameters[name + "_orig"]
                module.register_parameter(name, orig)
            raise
        return method

    def remove(self, module: Module) -> None:
        """Make the pruning permanent: ``<name>`` becomes a Parameter holding the pruned
        values; ``_orig`` and ``_mask`` go."""
        name = self._tensor_name
        with no_grad():
            w = self.apply_mask(module).detach()
        module.__dict__.pop(name, None)
        del module._parameters[name + "_orig"]
        del module._buffers[name + "_mask"]
        module.register_parameter(name, Parameter(w))


class PruningContainer(BasePruningMethod):
    """Successive pruning of one tensor: each new method's mask is computed on the
    entries (unstructured) or channels (structured) the earlier masks left."""

    def __init__(self, *methods):
        self._pruning_methods: tuple = ()
        self._tensor_name = methods[0]._tensor_name if methods else None
        for m in methods:
            self.add_pruning_method(m)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        if self._tensor_name is None:
            self._tensor_name = method._tensor_name
        elif method._tensor_name != self._tensor_name:
            raise ValueError(f"PruningContainer: methods act on {self._tensor_name!r}, got "
                             f"{method._tensor_name!r}")
        self._pruning_methods += (method,)

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        method = self._pruning_methods[-1]
        if method.PRUNING_TYPE == "global":  # a whole-tensor mask (custom_from_mask)
            return method.compute_mask(t, default_mask)
        mask = default_mask.clone()
        if method.PRUNING_TYPE == "unstructured":
            keep = (default_mask == 1).reshape(-1)
            idx = _where(keep)
            part = method.compute_mask(t.reshape(-1)[idx], default_mask.reshape(-1)[idx])
            flat = mask.reshape(-1)
            flat[idx] = part
            return flat.reshape(t.shape)
        dim = method.dim % t.ndim
        others = tuple(d for d in range(t.ndim) if d != dim)
        alive = _where(default_mask.sum(dim=others) != 0)
        part = method.compute_mask(t.index_select(dim, alive),
                                   default_mask.index_select(dim, alive))
        moved = mask.movedim(dim, 0).clone()
        moved[alive] = part.movedim(dim, 0)
        return moved.movedim(0, dim).contiguous()


def _zero_extremes(default_mask, scores, n: int, largest: bool):
    """A copy of `default_mask` with zeros at the `n` largest (or smallest) `scores`."""
    mask = default_mask.clone()
    if n:
        flat = mask.reshape(-1)
        flat[topk(scores.reshape(-1), n, largest=largest)[1]] = 0
        mask = flat.reshape(default_mask.shape)
    return mask


class Identity(BasePruningMethod):
    """Prunes nothing (a mask of ones)."""

    def compute_mask(self, t, default_mask):
        return default_mask


class RandomUnstructured(BasePruningMethod):
    """Prunes `amount` entries chosen at random (tinyfw's generator)."""

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        from ....creation import rand_like

        return _zero_extremes(default_mask, rand_like(t.float()),
                              _n_to_prune(self.amount, t.numel()), largest=True)


class L1Unstructured(BasePruningMethod):
    """Prunes the `amount` entries of smallest absolute value."""

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _zero_extremes(default_mask, t.abs(), _n_to_prune(self.amount, t.numel()),
                              largest=False)


class LnStructured(BasePruningMethod):
    """Prunes the `amount` channels along `dim` of smallest L`n` norm (n = 1, 2, ...)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1):
        _check_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        if t.ndim < 2:
            raise ValueError("ln_structured: a tensor with at least 2 dimensions is needed "
                             f"to prune channels, got shape {tuple(t.shape)}")
        dim = self.dim % t.ndim
        size = t.shape[dim]
        n = _n_to_prune(self.amount, size)
        if n == 0:
            return default_mask
        others = tuple(d for d in range(t.ndim) if d != dim)
        norms = t.abs().pow(self.n).sum(dim=others).pow(1.0 / self.n)
        keep = topk(norms, size - n, largest=True)[1]
        rows = zeros_like(t).movedim(dim, 0).clone()
        rows[keep] = 1
        return rows.movedim(0, dim).contiguous() * default_mask


class CustomFromMask(BasePruningMethod):
    """Prunes where a given mask is zero (a mask over the whole tensor, as PyTorch's
    "global" type: pruning an already pruned tensor multiplies the masks)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        return default_mask * self.mask.to(default_mask.dtype)


def identity(module: Module, name: str) -> Module:
    """A mask of ones on `module.<name>` (the reparametrisation without pruning)."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount) -> Module:
    """Prune `amount` (a fraction, or a count) random entries of `module.<name>`."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount, importance_scores=None) -> Module:
    """Prune the `amount` entries of `module.<name>` of smallest magnitude."""
    L1Unstructured.apply(module, name, amount, importance_scores=importance_scores)
    return module


def ln_structured(module: Module, name: str, amount, n, dim: int,
                  importance_scores=None) -> Module:
    """Prune the `amount` channels along `dim` of `module.<name>` of smallest Ln norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    """Prune `module.<name>` where `mask` is zero."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method=L1Unstructured, importance_scores=None,
                        **kwargs) -> None:
    """Prune the (module, name) pairs together: the entries of smallest score over all of
    them (``amount=0.8`` prunes 80% of their entries in total, unevenly per tensor)."""
    from ....ops.index import cat

    parameters = list(parameters)
    scores = importance_scores or {}
    if pruning_method.PRUNING_TYPE != "unstructured":
        raise TypeError("global_unstructured: only unstructured pruning methods")
    t = cat([scores.get((m, n), getattr(m, n)).detach().reshape(-1) for m, n in parameters])
    default = cat([getattr(m, n + "_mask", None).reshape(-1) if hasattr(m, n + "_mask")
                   else ones_like(getattr(m, n)).reshape(-1) for m, n in parameters])
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    container = PruningContainer(method)
    with no_grad():
        mask = container.compute_mask(t, default)
    start = 0
    for m, n in parameters:
        k = getattr(m, n).numel()
        custom_from_mask(m, n, mask[start:start + k].reshape(getattr(m, n).shape))
        start += k


def remove(module: Module, name: str) -> Module:
    """Make the pruning of `module.<name>` permanent."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"prune.remove: parameter {name!r} of {type(module).__name__} is not pruned")


def is_pruned(module: Module) -> bool:
    """True when `module` or a sub-module has a pruning pre-hook."""
    return any(isinstance(h, BasePruningMethod)
               for m in module.modules() for h in m._forward_pre_hooks.values())
