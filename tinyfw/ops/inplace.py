"""In-place ops (`add_`, `mul_`, `zero_`, `copy_`, `__setitem__` ...).

Each is its out-of-place op followed by a write into the tensor's own memory, so views see
the change.  The write bumps the shared version counter: a node that saved this tensor
for backward then refuses to use it.  When autograd records, the op is computed from a
clone of the old value and the tensor takes the new node as its grad_fn (history is
rebased, as in PyTorch); a write through a view rebases its base's history instead, and
the view becomes a view of the new base (`tinyfw/autograd/views.py`).
"""
from __future__ import annotations

import contextvars

from .. import dtypes as _dt
from ..autograd import views as _views
from ..autograd.function import GradMode, no_grad as _no_grad
from ..autograd.views import refresh as _refresh_view
from ..backend import backend_of, device_of
from ..random import Generator
from ..tensor import register_method
from . import elementwise as E
from ._util import Tensor, broadcast_shapes, ensure_tensor, reshape_array
from .index import (_fill, _indexed, index_put, index_spec, masked_fill, scatter, scatter_add,
                    torch_order)
from .shape import _check_basic, _is_basic


_grad_var = GradMode._var


def _recording(x: Tensor, others=()) -> bool:
    """True when the write into x is recorded: grad mode is on and x or a value requires
    grad (views among them first catch up with writes into their base)."""
    if not GradMode.enabled:
        return False
    if x._view is not None:
        _refresh_view(x)
    rec = x._rg
    for o in others:
        if isinstance(o, Tensor):
            if o._view is not None:
                _refresh_view(o)
            rec = rec or o._rg
    return rec


def _check_target(x: Tensor, op: str) -> None:
    if x._view is not None:
        _views.check_write(x, op)
    if x.grad_fn is None and x._rg:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                           "operation; do it under tinyfw.no_grad() or use the out-of-place op")


# set by tinyfw.jit's tracer while tracing: told of every write, before it happens, so a
# traced module's buffer updates (batch-norm running stats) become graph outputs
_trace_write: contextvars.ContextVar = contextvars.ContextVar("tinyfw_trace_write", default=None)


def _write(x: Tensor, result: Tensor, op: str) -> Tensor:
    """Store `result` into x's memory, bump its version and take result's history."""
    if result.shape != x.shape:
        raise RuntimeError(f"{op}: the result's shape {tuple(result.shape)} (after "
                           f"broadcasting) does not match the tensor's shape {tuple(x.shape)}")
    src, dst = result.dtype, x.dtype
    if src.category > dst.category:
        raise RuntimeError(f"{op}: result type {src.name} cannot be cast to the tensor's "
                           f"dtype {dst.name} in place")
    B = backend_of(x._data)
    if not B.is_writeable(x._data):
        raise RuntimeError(f"{op}: the tensor is a read-only (expanded/broadcast) view; "
                           "clone() it before writing")
    if result.device != x.device:
        raise RuntimeError(f"{op}: the value is on device '{result.device}' and the tensor on "
                           f"'{x.device}'; move it with .to(device) first")
    hook = _trace_write.get()
    if hook is not None:
        hook(x, result, op)
    B.copy_(x._data, result._data)
    x._version[0] += 1
    if GradMode.enabled and result._rg:
        if src is not dst:
            result = result.to(dst)
        if x._view is None:
            x.grad_fn = result.grad_fn
            x._rg = True
        else:  # a view: its base takes the write into its history (autograd/views.py)
            _views.rebase(x, result)
    return x


def _inplace(fn, name: str):
    def op(x, *args, **kwargs):
        if _recording(x, args):
            _check_target(x, name)
            return _write(x, fn(x.clone(), *args, **kwargs), name)
        return _write(x, fn(x, *args, **kwargs), name)
    op.__name__ = name
    op.__doc__ = f"In-place {fn.__name__}: writes into this tensor and returns it."
    return op


def _overwrite(x: Tensor, value: Tensor, op: str) -> Tensor:
    # ops whose result ignores x's old value still keep x in the graph (zero gradient)
    value = value.to(x.dtype).expand(*x.shape) if value.shape != x.shape else value.to(x.dtype)
    if _recording(x, (value,)):
        _check_target(x, op)
        value = E.where(x.new_ones(x.shape, dtype=_dt.bool_), value, x.clone())
    return _write(x, value, op)


def fill_(x: Tensor, value) -> Tensor:
    """Set every element to `value`."""
    value = value if isinstance(value, Tensor) else x.new_full((), value)
    return _overwrite(x, value, "fill_")


def zero_(x: Tensor) -> Tensor:
    """Set every element to 0."""
    return _overwrite(x, x.new_zeros(()), "zero_")


def copy_(x: Tensor, src) -> Tensor:
    """Copy `src` (broadcast, cast to x's dtype, moved from any device) into x."""
    src = ensure_tensor(src, "copy_")
    if src.device != x.device:
        src = src.to(x.device)
    try:
        return _overwrite(x, src, "copy_")
    except RuntimeError as e:
        if "expand" in str(e):
            raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} does not broadcast to "
                               f"{tuple(x.shape)}") from None
        raise


# float64 draws (made on the host by the generator and moved to x's device, so that one
# seed fills every device alike; nothing is drawn on meta, as in PyTorch), scaled in
# float64 and rounded once to x's dtype: numpy's uniform/normal, bit for bit
def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with samples uniform in [a, b)."""
    from ..creation import rand

    with _no_grad():
        u = rand(x.shape, generator=generator, dtype=_dt.float64, device=x.device)
        u = (u * (b - a) + a).to(x.dtype)
    return _overwrite(x, u, "uniform_")


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with samples from N(mean, std**2)."""
    from ..creation import randn

    with _no_grad():
        u = randn(x.shape, generator=generator, dtype=_dt.float64, device=x.device)
        u = (u * std + mean).to(x.dtype)
    return _overwrite(x, u, "normal_")


def _on_device_of(x: Tensor, t: Tensor, op: str):
    """t's array on x's device: a 0-d CPU tensor is moved there, as in an op; a tensor on
    another device is an error naming both."""
    a = t._data
    dev, xdev = device_of(a), device_of(x._data)
    if dev is not xdev and dev != xdev:
        if t.ndim or dev.type != "cpu":
            raise RuntimeError(f"{op}: the value is on device '{t.device}' and the tensor "
                               f"on '{x.device}'; move it with .to(device) first")
        a = backend_of(x._data).from_host(t._host())
    return a


def _value_array(x: Tensor, value, op: str):
    """`value` as an array of x's dtype on x's device (a 0-d CPU tensor joins x's device,
    as in an op; a tensor on another device is an error)."""
    if isinstance(value, Tensor):
        a = _on_device_of(x, value, op)
        return a if a.dtype == x._data.dtype else backend_of(a).cast(a, x._data.dtype)
    from ..creation import tensor

    return tensor(value, dtype=x.dtype, device=x.device)._data


def setitem(x: Tensor, index, value) -> None:
    """x[index] = value, broadcasting value; with autograd, history is rebased.  Without
    it, the backend writes into x's memory: a view of the addressed part filled or copied
    into for basic indexing, ``index_put_`` for index tensors and masks."""
    if _grad_var.get() and _recording(x, (value,)):
        _check_target(x, "__setitem__")
        _write(x, index_put(x.clone(), index, value), "__setitem__")
        return
    a = x._data
    B = backend_of(a)
    if not B.is_writeable(a):
        raise RuntimeError("__setitem__: the tensor is a read-only (expanded/broadcast) view; "
                           "clone() it before writing")
    if _is_basic(index):
        dst = B.slice_view(a, _check_basic(x, index))
        if type(value) in _NUMBERS:
            B.fill_(dst, value)
        else:
            B.copy_(dst, _fitted(x, index, _value_array(x, value, "__setitem__"), dst.shape))
    else:
        spec, tensors = index_spec(x, index, "__setitem__")
        pre, spec, tensors = torch_order(spec, tensors)
        if pre is not None:  # integer selects first, as PyTorch (index.torch_order)
            a = B.slice_view(a, _check_basic(x, pre))
            if spec is None:
                spec = (Ellipsis,)
        arrays = [_on_device_of(x, t, "__setitem__") for t in tensors]
        if type(value) in _NUMBERS:
            v = B.empty((), a.dtype)  # (empty + fill_: B.full's error-state guard costs more)
            B.fill_(v, value)
        else:
            v = _value_array(x, value, "__setitem__")
        try:
            _indexed(lambda: B.index_put_(a, _fill(spec, arrays), v, False), x, index,
                     "__setitem__")
        except ValueError as e:
            raise RuntimeError(f"__setitem__: cannot assign a value of shape {tuple(v.shape)} to "
                               f"index {index!r} of a tensor of shape {tuple(x.shape)}: {e}") from None
    x._version[0] += 1


_NUMBERS = (int, float, bool)


def _fitted(x: Tensor, index, v, shape: tuple):
    """Value array `v` ready to copy into a part of `shape`: leading 1s beyond its dims
    dropped (numpy's rule for assignment); an error naming the shapes if it does not
    broadcast there."""
    vshape = v.shape
    while len(vshape) > len(shape) and vshape[0] == 1:
        vshape = vshape[1:]
    try:
        fits = broadcast_shapes(vshape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise RuntimeError(f"__setitem__: cannot assign a value of shape {tuple(v.shape)} to "
                           f"index {index!r} of a tensor of shape {tuple(x.shape)}")
    return v if vshape == v.shape else reshape_array(backend_of(v), v, vshape)


_INPLACE = {
    "add_": E.add, "sub_": E.sub, "mul_": E.mul, "div_": E.div, "pow_": E.pow,
    "clamp_": E.clamp, "clip_": E.clamp, "neg_": E.neg, "abs_": E.abs, "exp_": E.exp,
    "log_": E.log, "sqrt_": E.sqrt, "relu_": E.relu, "sigmoid_": E.sigmoid, "tanh_": E.tanh,
    "floor_": E.floor, "ceil_": E.ceil, "round_": E.round, "maximum_": E.maximum,
    "minimum_": E.minimum, "masked_fill_": masked_fill, "scatter_add_": scatter_add,
    "scatter_": scatter, "index_put_": index_put,
}
for _name, _fn in _INPLACE.items():
    register_method(_name, _inplace(_fn, _name))
register_method("__iadd__", _inplace(E.add, "+="))
register_method("__isub__", _inplace(E.sub, "-="))
register_method("__imul__", _inplace(E.mul, "*="))
register_method("__itruediv__", _inplace(E.div, "/="))
for _name, _fn in {"fill_": fill_, "zero_": zero_, "copy_": copy_, "uniform_": uniform_,
                   "normal_": normal_, "__setitem__": setitem}.items():
    register_method(_name, _fn)
