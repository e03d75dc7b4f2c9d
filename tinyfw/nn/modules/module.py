"""`Parameter` and `Module`: the base of every layer.

A Module owns three ordered name tables — parameters, buffers, sub-modules — filled by
plain attribute assignment (``self.weight = Parameter(...)``, ``self.fc = Linear(...)``).
Everything else (recursive listing, state dicts, train/eval, dtype conversion, hooks,
repr) walks those tables, with PyTorch's names, key formats and semantics.  The state
dict and dtype conversion methods are defined in `_module_state` (`Module` inherits them
from `_StateMixin`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

from ...creation import empty, zeros_like
from ...tensor import Tensor
from ._module_state import _IncompatibleKeys, _StateMixin  # noqa: F401

# load_state_dict's result keeps this module's name, so its pickles read as before the split
_IncompatibleKeys.__module__ = __name__


class Parameter(Tensor):
    """A Tensor that is a module's learnable weight: assigning one to a Module attribute
    registers it, and it requires grad unless told otherwise.  It shares memory with the
    tensor it is made from (and so lives on its device)."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        self._data = data._data
        self._version = data._version
        self._rg = False
        self.grad_fn = None
        self._grad = None
        self._base = None
        self._view = None
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __deepcopy__(self, memo):
        p = Parameter(self.detach().clone(), self._rg)
        if self._grad is not None:
            p._grad = self._grad.detach().clone()
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, proto):
        raise TypeError("Parameter: pickling is not supported; use tinyfw.save on a state_dict")


class RemovableHandle:
    """Returned by the hook registrations; ``remove()`` unregisters the hook.  Also a
    context manager that removes it on exit."""

    _next_id = 0

    def __init__(self, table: dict):
        self._table = table
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregister the hook (a no-op when already removed)."""
        self._table.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _indent(s: str, n: int) -> str:
    lines = s.split("\n")
    return lines[0] if len(lines) == 1 else lines[0] + "\n" + "\n".join(
        " " * n + line for line in lines[1:])


class Module(_StateMixin):
    """Base class of all layers and models.  Subclasses call ``super().__init__()`` first,
    assign their parameters, buffers and sub-modules as attributes, and define
    ``forward``; calling the module runs the forward pre-hooks, ``forward`` and the
    forward hooks."""

    training: bool

    def __init__(self) -> None:
        # bypass __setattr__: the tables it consults do not exist yet
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()

    def forward(self, *args, **kwargs):
        """The computation; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    # -- attribute tables -----------------------------------------------------------
    def _check_ready(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__})")

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_ready("parameters")
            self._discard(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(tinyfw.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_ready("a sub-module")
            self._discard(name, keep="_modules")
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (tinyfw.nn.Module or None expected)")
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(tinyfw.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str, keep: str) -> None:
        # `keep` is the table about to receive `name`: its entry is overwritten in place,
        # so a replaced child keeps its position (a Sequential's order), as in PyTorch
        d = self.__dict__
        d.pop(name, None)
        for table in ("_parameters", "_buffers", "_modules"):
            if table != keep:
                d[table].pop(name, None)
        d["_non_persistent_buffers"].discard(name)

    def __getattr__(self, name: str):
        # only reached when normal lookup fails
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            t = d.get(table)
            if t is not None and name in t:
                return t[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if name in d[table]:
                del d[table][name]
                d["_non_persistent_buffers"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    @staticmethod
    def _check_name(name, kind: str, owner: "Module") -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")
        if name in owner.__dict__ and name not in owner._parameters and \
                name not in owner._buffers and name not in owner._modules:
            raise KeyError(f"attribute '{name}' already exists on {type(owner).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, e.g. a disabled bias)."""
        self._check_ready("parameters")
        self._check_name(name, "parameter", self)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (tinyfw.nn.Parameter or None required)")
        if name in self._buffers or name in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is not a parameter (BatchNorm's running mean).
        Non-persistent buffers are left out of the state dict."""
        self._check_ready("buffers")
        self._check_name(name, "buffer", self)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (tinyfw.Tensor or None required)")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a sub-module under `name`."""
        self._check_ready("a sub-module")
        self._check_name(name, "module", self)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    # -- walking --------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(qualified name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name,
                                       remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for the direct sub-modules."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, v in m.__dict__[table].items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mprefix + ("." if mprefix else "") + name, v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(qualified name, parameter), each shared parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (each shared one once): what an optimizer takes."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(qualified name, buffer)."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The descendant named by a dotted path ('' is this module)."""
        m = self
        for part in target.split(".") if target else []:
            if part not in m._modules or m._modules[part] is None:
                raise AttributeError(f"get_submodule: {type(m).__name__} has no sub-module "
                                     f"'{part}' (path '{target}')")
            m = m._modules[part]
        return m

    def get_parameter(self, target: str) -> Parameter:
        """The parameter named by a dotted path."""
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._parameters:
            raise AttributeError(f"get_parameter: {type(m).__name__} has no parameter '{name}'")
        return m._parameters[name]

    # -- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> "Module":
        """Set evaluation mode recursively (same as ``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Turn gradient recording of every parameter on or off (freezing)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (to None, or to zeros)."""
        for p in self.parameters():
            if p._grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                p._grad = zeros_like(p._grad)

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call fn on every sub-module (children first) and then on self; e.g. custom init."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- hooks ----------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args)`` runs before forward; it may return replacement args (a
        tuple, or a single value)."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = hook
        return h

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args, output)`` runs after forward; it may return a replacement
        output."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = hook
        return h

    # -- printing -------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's settings, shown inside its repr (override in layers)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _indent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        s = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)
