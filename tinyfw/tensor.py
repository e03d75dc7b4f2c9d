"""`Tensor`: an n-d array with a dtype, a device and an autograd history.

A tensor's storage is its backend's array (`_data`): a numpy array on the CPU, the
device backend's array object elsewhere (see `tinyfw.backend`).  Arrays carry shape,
strides and offset, so views cost no copy.  Ops are not defined here: each op family in
`tinyfw/ops/` attaches its methods and operators to this class, so one op lives in one
place.
"""
from __future__ import annotations

import contextvars

from . import dtypes as _dt
from .autograd.function import GradMode
from .autograd.views import refresh as _refresh_view
from .backend import CPU_ARRAY as _ndarray, backend_of, device_of
from .device import Device

_from_np = _dt._by_np
# set by tinyfw.jit while tracing (in the tracing thread only): called when Python reads
# a value, so a traced function that branches on data is refused instead of baked in
_trace_hook: contextvars.ContextVar = contextvars.ContextVar("tinyfw_trace_hook", default=None)


class Tensor:
    """An n-dimensional array that can record the ops applied to it for autograd."""

    # _view: for a view made by a view op (reshape, permute, expand, slicing), how it was
    # derived from its autograd base (see tinyfw/autograd/views.py); None otherwise
    __slots__ = ("_data", "_rg", "grad_fn", "_grad", "_version", "_base", "_view", "_hooks",
                 "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray op Tensor` to our reflected ops

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        from .creation import _to_array

        self._data = _to_array(data, dtype)
        self._rg = False
        self.grad_fn = None
        self._grad = None
        self._version = [0]
        self._base = None
        self._view = None
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data, requires_grad: bool = False, grad_fn=None) -> "Tensor":
        # the dispatcher's constructor: no checks, no conversions
        t = _new(Tensor)
        t._data = data
        t._rg = requires_grad
        t.grad_fn = grad_fn
        t._grad = None
        t._version = [0]
        t._base = None
        t._view = None
        t._hooks = None
        t._retains_grad = False
        return t

    # -- attributes -----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """The size of each dimension, as a tuple of ints."""
        return self._data.shape

    def size(self, dim: int | None = None):
        """The shape, or the size of one dimension."""
        if dim is None:
            return self._data.shape
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def dtype(self) -> _dt.DType:
        """The element type."""
        return _from_np[self._data.dtype]

    @property
    def device(self) -> Device:
        """Where the data lives."""
        return device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        """True for tensors on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def is_meta(self) -> bool:
        """True for tensors on the meta device (shape and dtype, no data)."""
        return self.device.type == "meta"

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return self._data.size

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    def stride(self, dim: int | None = None):
        """Strides in elements (PyTorch's convention), or one dimension's stride."""
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim, "stride")]

    def is_contiguous(self) -> bool:
        """True when elements are laid out row-major without gaps."""
        a = self._data
        return a.flags.c_contiguous if type(a) is _ndarray else a.backend.is_contiguous(a)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (their .grad is filled)."""
        v = self._view
        if v is not None and v[5] != self._version[0]:
            _refresh_view(self)
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded for autograd."""
        v = self._view
        if v is not None and v[5] != self._version[0]:
            _refresh_view(self)
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set requires_grad in place (leaf tensors only); returns self."""
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError("requires_grad_: cannot turn off requires_grad on a non-leaf "
                                   "tensor; use detach() instead")
            return self
        if requires_grad and not _from_np[self._data.dtype].is_floating_point:
            raise RuntimeError(f"requires_grad_: only floating-point tensors can require "
                               f"gradients, this one is {self.dtype.name}")
        self._rg = bool(requires_grad)
        return self

    @property
    def grad(self):
        """The accumulated gradient of a leaf tensor (None until backward)."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"grad: assigned shape {tuple(value.shape)} does not match "
                                   f"the tensor's shape {tuple(self.shape)}")
            if value.dtype is not self.dtype:
                raise RuntimeError(f"grad: assigned dtype {value.dtype.name} does not match "
                                   f"the tensor's dtype {self.dtype.name}")
        self._grad = value

    @property
    def data(self) -> "Tensor":
        """The same storage, detached from the graph (PyTorch's `.data`)."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data

    @property
    def T(self) -> "Tensor":
        """Dimensions reversed (a view)."""
        return self.permute(*range(self._data.ndim - 1, -1, -1))

    @property
    def mT(self) -> "Tensor":
        """The last two dimensions swapped (a view)."""
        return self.transpose(-2, -1)

    # -- graph ------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage, cut from the graph."""
        t = Tensor._make(self._data)
        t._version = self._version
        t._base = self._base if self._base is not None else self
        return t

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place."""
        self.grad_fn = None
        self._rg = False
        return self

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's `.grad`."""
        from .autograd.engine import backward

        backward([self], None if gradient is None else [gradient], retain_graph,
                 create_graph, inputs)

    def register_hook(self, hook) -> "_HookHandle":
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient.  Returns a handle whose ``remove()`` unregisters it."""
        if self._view is not None:
            _refresh_view(self)
        if not self._rg:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require grad")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self.grad_fn._pre_hooks is None:
                self.grad_fn._pre_hooks = []
            hooks = self.grad_fn._pre_hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after backward stored a gradient into this leaf's ``.grad``
        (once per gradient reaching it); returns a handle with ``remove()``."""
        from .autograd.engine import register_post_accumulate_grad_hook

        return register_post_accumulate_grad_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after backward."""
        if self._view is not None:
            _refresh_view(self)
        if self.grad_fn is None or self._retains_grad:
            return
        import weakref

        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                t._grad = g if t._grad is None else t._grad + g
            return None

        self._retains_grad = True
        self.register_hook(keep)

    @property
    def retains_grad(self) -> bool:
        """True when retain_grad() was called on this non-leaf tensor."""
        return self._retains_grad

    # -- interop ----------------------------------------------------------------------
    def numpy(self):
        """The data as a numpy array, sharing memory (bfloat16 as ml_dtypes.bfloat16).
        CPU tensors only: move others with ``.cpu()`` first, as in PyTorch."""
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "numpy()")
        if self._rg:
            raise RuntimeError("numpy(): the tensor requires grad; call .detach().numpy()")
        if type(self._data) is not _ndarray:
            raise TypeError(f"numpy(): the tensor is on device '{self.device}'; numpy arrays "
                            "live on the CPU, so call .cpu() first (e.g. t.cpu().numpy())")
        return self._data

    def __array__(self, dtype=None, copy=None):
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "__array__")
        a = self._data
        if type(a) is not _ndarray:
            raise TypeError(f"cannot convert a tensor on device '{self.device}' to a numpy "
                            "array; call .cpu() first")
        return a if dtype is None else a.astype(dtype)

    def _host(self):
        """The values as a host (numpy) array: the array itself for CPU tensors."""
        a = self._data
        return a if type(a) is _ndarray else a.backend.to_host(a)

    def item(self):
        """The single element as a Python number."""
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "item()")
        if self._data.size != 1:
            raise RuntimeError(f"item(): the tensor has {self._data.size} elements "
                               f"(shape {self.shape}); only one-element tensors convert")
        v = self._host().reshape(()).item()
        return float(v) if self.dtype in (_dt.bfloat16,) else v

    def tolist(self):
        """The data as (nested) Python lists."""
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "tolist()")
        from .backend.host import to_list

        return to_list(self._host())

    def __repr__(self) -> str:
        from .backend.host import format_array

        if self.device.type == "meta":
            body = f"..., size={tuple(self.shape)}"
        else:
            body = format_array(self._host())
        extra = []
        if self.device.type != "cpu":
            extra.append(f"device='{self.device}'")
        if self.dtype not in (_dt.float32, _dt.int64, _dt.bool_) or self._data.size == 0:
            extra.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn={self.grad_fn!r}")
        elif self._rg:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __str__ = __repr__

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def _scalar(self, kind: str):
        if self._data.size != 1:
            raise RuntimeError(f"{kind}: a tensor with {self._data.size} elements (shape "
                               f"{self.shape}) cannot be converted to a Python scalar")
        return self.item()

    def __bool__(self) -> bool:
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "bool()")
        if self._data.size != 1:
            raise RuntimeError(f"bool value of a tensor with {self._data.size} elements is "
                               "ambiguous; use .any() or .all()")
        return bool(self._host().reshape(()).item())

    def __float__(self) -> float:
        return float(self._scalar("float()"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def __index__(self) -> int:
        hook = _trace_hook.get()
        if hook is not None:
            hook(self, "__index__")
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self._host().reshape(()).item())

    __hash__ = object.__hash__

    def __deepcopy__(self, memo):
        t = Tensor._make(_copy_array(self._data), self._rg and self.grad_fn is None)
        if self._grad is not None:
            t._grad = Tensor._make(_copy_array(self._grad._data))
        memo[id(self)] = t
        return t


_new = object.__new__


def _copy_array(a):
    """A new row-major array with a's values, on a's device."""
    B = backend_of(a)
    out = B.empty(a.shape, a.dtype)
    B.copy_(out, a)
    return out


class _HookHandle:
    """Returned by register_hook; ``remove()`` unregisters the hook."""

    __slots__ = ("hooks", "hook")

    def __init__(self, hooks: list, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self) -> None:
        """Unregister the hook (a no-op if already removed)."""
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def _wrap_dim(dim: int, ndim: int, op: str) -> int:
    """Turn a possibly negative dim into 0..ndim-1, or raise naming the op."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} "
                         f"dimension{'s' if ndim != 1 else ''} (expected {-n}..{n - 1})")
    return dim % n


def register_method(name: str, fn) -> None:
    """Attach an op to Tensor as a method (used by the op modules)."""
    setattr(Tensor, name, fn)


def is_grad_enabled() -> bool:
    """True when ops record the autograd graph."""
    return GradMode.enabled
