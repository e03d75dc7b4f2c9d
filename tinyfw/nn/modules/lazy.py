"""Lazy modules: layers whose input size is read from the first input they see
(`LazyLinear`, `LazyBatchNorm1d/2d/3d`, `LazyInstanceNorm1d/2d/3d`).

Their parameters start as `UninitializedParameter` (and running statistics as
`UninitializedBuffer`): storage-less placeholders that keep their identity when they are
materialised, so an optimizer built before the first call still holds the real
parameters.  The first call (or load_state_dict, which takes the checkpoint's shapes)
materialises them, runs the layer's own initialisation, and the module becomes its
ordinary class (`cls_to_become`), as in PyTorch."""
from __future__ import annotations

from ... import creation
from ...autograd.function import no_grad
from ...tensor import Tensor
from .linear import Linear
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .normalization_more import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet; `materialize(shape)` gives it storage
    (uninitialised values) and makes it a plain Parameter, the same object."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        super().__init__(creation.empty(0, dtype=dtype, device=device), requires_grad)

    def materialize(self, shape: tuple, device=None, dtype=None) -> None:
        """Storage of `shape` (values unset: the owner initialises them)."""
        self.data = creation.empty(*shape, dtype=dtype or self.dtype,
                                   device=device or self.device)
        self.__class__ = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class UninitializedBuffer(Tensor):
    """A buffer whose shape is not known yet (a lazy BatchNorm's running statistics)."""

    __slots__ = ()

    def __init__(self, device=None, dtype=None):
        t = creation.empty(0, dtype=dtype, device=device)
        self._data, self._version = t._data, t._version
        self._rg, self.grad_fn, self._grad = False, None, None
        self._base = self._view = self._hooks = None
        self._retains_grad = False

    def materialize(self, shape: tuple, device=None, dtype=None) -> None:
        """Storage of `shape`; a plain Tensor from now on."""
        self.data = creation.empty(*shape, dtype=dtype or self.dtype,
                                   device=device or self.device)
        self.__class__ = Tensor

    def __repr__(self) -> str:
        return "<UninitializedBuffer>"


def _uninitialized(t) -> bool:
    return isinstance(t, (UninitializedParameter, UninitializedBuffer))


class LazyModuleMixin:
    """Mixed in before a layer class: the first call infers the sizes
    (`initialize_parameters(*inputs)`), then the module becomes `cls_to_become`."""

    cls_to_become: type | None = None

    def has_uninitialized_params(self) -> bool:
        """True while a parameter or buffer of this module is still a placeholder."""
        return any(_uninitialized(t) for t in list(self._parameters.values())
                   + list(self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        """Materialise the parameters from the first input (each lazy class defines it)."""
        raise NotImplementedError

    def _lazy_loaded(self) -> None:
        """After load_state_dict: finish when every placeholder has been materialised."""
        if not self.has_uninitialized_params():
            self._sync_sizes()
            self._become()

    def _sync_sizes(self) -> None:
        """Set the size attributes from the materialised parameters."""

    def _become(self) -> None:
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become

    def __call__(self, *args, **kwargs):
        # only a module still of its lazy class gets here: the first call
        with no_grad():
            self.initialize_parameters(*args, **kwargs)
        self._become()
        return Module.__call__(self, *args, **kwargs)  # the class may have changed


class LazyLinear(LazyModuleMixin, Linear):
    """Linear whose in_features is the last dim of the first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Linear.__init__(self, 0, out_features, False, device, dtype)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Linear's initialisation, once the sizes are known."""
        if not self.has_uninitialized_params() and self.in_features:
            Linear.reset_parameters(self)

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        """in_features = input.shape[-1]; materialise and initialise."""
        if input.ndim == 0:
            raise ValueError("LazyLinear: the input must have at least one dimension")
        self.in_features = input.shape[-1]
        self.weight.materialize((self.out_features, self.in_features))
        if self.bias is not None:
            self.bias.materialize((self.out_features,))
        self.reset_parameters()

    def _sync_sizes(self) -> None:
        self.in_features = self.weight.shape[1]


class _LazyNorm(LazyModuleMixin):
    """Shared by the lazy batch and instance norms: num_features = input.shape[1]."""

    def _lazy_init(self, affine: bool, track_running_stats: bool, device, dtype) -> None:
        kw = dict(device=device, dtype=dtype)
        if affine:
            self.weight = UninitializedParameter(**kw)
            self.bias = UninitializedParameter(**kw)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(**kw)
            self.running_var = UninitializedBuffer(**kw)

    def reset_parameters(self) -> None:
        """The norm's initialisation, once the sizes are known."""
        if not self.has_uninitialized_params() and self.num_features:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        """num_features = input.shape[1] (input.shape[0] for an unbatched instance-norm
        input); materialise and initialise."""
        dims = getattr(self, "_batched_dims", None)
        channel = 0 if dims is not None and input.ndim == dims - 1 else 1
        if input.ndim <= channel:
            raise ValueError(f"{type(self).__name__}: input of shape {tuple(input.shape)} has "
                             "no channel dimension")
        self.num_features = input.shape[channel]
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if _uninitialized(t):
                t.materialize((self.num_features,))
        self.reset_parameters()

    def _sync_sizes(self) -> None:
        t = self.weight if self.weight is not None else self.running_mean
        if t is not None:
            self.num_features = t.shape[0]


def _lazy_norm(base: type, name: str, affine_default: bool, track_default: bool) -> type:
    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = affine_default, track_running_stats: bool = track_default,
                 device=None, dtype=None):
        base.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype)
        self._lazy_init(affine, track_running_stats, device, dtype)

    doc = f"{base.__name__} whose num_features is the channel count of the first input."
    return type(name, (_LazyNorm, base), {"__init__": __init__, "__doc__": doc,
                                           "cls_to_become": base, "__module__": __name__})


LazyBatchNorm1d = _lazy_norm(BatchNorm1d, "LazyBatchNorm1d", True, True)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d, "LazyBatchNorm2d", True, True)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d, "LazyBatchNorm3d", True, True)
# PyTorch's lazy instance norms default to affine=True, track_running_stats=True (the
# eager ones to False, False)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d, "LazyInstanceNorm1d", True, True)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d, "LazyInstanceNorm2d", True, True)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d, "LazyInstanceNorm3d", True, True)

__all__ = ["UninitializedParameter", "UninitializedBuffer", "LazyModuleMixin", "LazyLinear",
           "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d"]
