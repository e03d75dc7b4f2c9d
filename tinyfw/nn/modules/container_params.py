"""Parameter containers: `ParameterList` and `ParameterDict`.

They register what they hold so `parameters()`, `state_dict()` (keys ``"0"``, ``"1"``...
or the dict's keys), optimizers and `.to()` find it.  As in PyTorch, a plain Tensor put
in becomes a `Parameter` (requiring grad); other values (ints, modules, None) are kept
as plain attributes."""
from __future__ import annotations

import operator
from typing import Any, Iterable, Iterator, Mapping

from ...tensor import Tensor
from .module import Module, Parameter


def _put(owner: Module, name: str, value: Any) -> None:
    # a replaced entry may change kind (a Parameter replaced by an int): drop the old one
    if hasattr(owner, name):
        delattr(owner, name)
    setattr(owner, name, _wrap(value))


def _wrap(value: Any) -> Any:
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of parameters that registers them; indexing gives a parameter, slicing a
    ParameterList.  It has no forward."""

    def __init__(self, values: Iterable[Any] | None = None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _key(self, idx) -> str:
        i = operator.index(idx)
        if not -self._size <= i < self._size:
            raise IndexError(f"ParameterList: index {i} is out of range for {self._size} entries")
        return str(i % self._size)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList([self[i] for i in range(self._size)[idx]])
        return getattr(self, self._key(idx))

    def __setitem__(self, idx, value: Any) -> None:
        _put(self, self._key(idx), value)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(self._size))

    def __iadd__(self, values: Iterable[Any]) -> "ParameterList":
        return self.extend(values)

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, value: Any) -> "ParameterList":
        """Add a value (a Tensor becomes a Parameter) at the end."""
        self._size += 1
        _put(self, str(self._size - 1), value)
        return self

    def extend(self, values: Iterable[Any]) -> "ParameterList":
        """Add several values at the end."""
        if isinstance(values, Tensor) or not hasattr(values, "__iter__"):
            raise TypeError("ParameterList.extend: expected an iterable of parameters, got "
                            f"{type(values).__name__}")
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): {type(v).__name__} of shape {tuple(v.shape)}"
                         if isinstance(v, Tensor) else f"({i}): {v!r}"
                         for i, v in enumerate(self))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); index it instead")


class ParameterDict(Module):
    """An insertion-ordered dict of parameters that registers them."""

    def __init__(self, parameters: Mapping[str, Any] | Iterable | None = None):
        super().__init__()
        self._keys: dict[str, None] = {}
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(f"ParameterDict: no parameter named {key!r} (keys: {list(self._keys)})")
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        self._keys[key] = None
        _put(self, key, value)

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018  (KeyError naming the key)
        del self._keys[key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._keys))

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __or__(self, other: "ParameterDict") -> "ParameterDict":
        out = self.copy()
        out.update(other)
        return out

    def __ior__(self, other: "ParameterDict") -> "ParameterDict":
        self.update(other)
        return self

    def keys(self):
        """The names."""
        return self._keys.keys()

    def items(self):
        """(name, value) pairs."""
        return [(k, self[k]) for k in self._keys]

    def values(self):
        """The values."""
        return [self[k] for k in self._keys]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default`."""
        return self[key] if key in self._keys else default

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of `key`, first setting it to `default` if absent."""
        if key not in self._keys:
            self[key] = default
        return self[key]

    def pop(self, key: str) -> Any:
        """Remove and return a value."""
        v = self[key]
        del self[key]
        return v

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted (name, value)."""
        if not self._keys:
            raise KeyError("ParameterDict.popitem: the dict is empty")
        k = next(reversed(list(self._keys)))
        return k, self.pop(k)

    def clear(self) -> None:
        """Remove every entry."""
        for k in list(self._keys):
            del self[k]

    def copy(self) -> "ParameterDict":
        """A shallow copy (the same Parameter objects)."""
        return ParameterDict([(k, self[k]) for k in self._keys])

    def fromkeys(self, keys: Iterable[str], default: Any = None) -> "ParameterDict":
        """A new ParameterDict with `keys`, each set to `default`."""
        return ParameterDict([(k, default) for k in keys])

    def update(self, parameters) -> None:
        """Add entries from a mapping or from (name, value) pairs.  As in PyTorch, a plain
        dict's entries go in sorted by key; an OrderedDict, a ParameterDict or a sequence
        of pairs keeps its order."""
        from collections import OrderedDict

        if isinstance(parameters, (OrderedDict, ParameterDict)):
            items = list(parameters.items())
        elif isinstance(parameters, dict):
            items = sorted(parameters.items())
        else:
            items = parameters
        for pair in items:
            if len(pair) != 2:
                raise ValueError("ParameterDict.update: expected (name, value) pairs")
            self[pair[0]] = pair[1]

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): {type(v).__name__} of shape {tuple(v.shape)}"
                         if isinstance(v, Tensor) else f"({k}): {v!r}" for k, v in self.items())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict has no forward(); index it instead")
