"""`autocast`: run each op in the precision its policy names (mixed precision).

Inside ``with tinyfw.autocast("cpu", dtype=tinyfw.bfloat16):`` an interceptor in the
dispatcher (tinyfw/dispatch.py) reads the op's ``Function.autocast`` declaration and casts
its floating inputs before the kernel runs:

- ``"lower"`` (matmul, conv2d): float32/float16/bfloat16 inputs to the region's dtype;
- ``"float32"`` (exp, log, pow, softmax, log_softmax, the norms, sums, cross-entropy):
  float16/bfloat16 inputs to float32;
- ``"promote"`` (binary elementwise ops, where, cat): mixed float inputs to the widest;
- ``None``: the op runs on its inputs as they are.

float64 inputs are never cast, and only ops whose inputs are on the region's device type
are touched (``meta`` and the test suite's ``check`` device count as ``cpu``).  The casts
are ordinary ``Cast`` ops: differentiable (gradients reach float32 leaves in float32),
recorded by the tracer, exported to ONNX.  Backward formulas are left alone: their dtypes
follow the forward's.

Weight cache, as PyTorch's: within the outermost region a float32 leaf that requires grad
(a parameter) is cast to the low dtype once and reused, also through views of it
(``linear`` uses ``weight.mT``: the transposed view is replayed on the cached cast).  The
cache is dropped when the outermost region exits; unlike PyTorch's, an entry is also
dropped when the parameter was written in place since (an optimizer step inside the
region), and entries made without grad mode are not reused with it.  While tracing, no
cache is used: the graph records each cast and CSE merges repeated ones.

The mode is context-local (a ContextVar, like grad mode): a thread started inside a region
runs without autocast, as in PyTorch.
"""
from __future__ import annotations

import contextvars
import functools
import importlib

from .. import dtypes as _dt
from ..autograd.engine import InBackward
from ..autograd.function import GradMode
from ..autograd.views import BASE, NO_GRAD, chain, replay
from ..backend import CPU_ARRAY
from ..dispatch import apply, interceptors, pop_interceptor, push_interceptor
from ..ops.convert import Cast

# (tinyfw.tensor is the factory function: the module is reached by its full name)
_tensor_mod = importlib.import_module("tinyfw.tensor")

#: the device types an autocast region names, and the default low dtype of each
DEFAULT_DTYPES = {"cpu": _dt.bfloat16, "cuda": _dt.float16}
# devices that stand in for the CPU: a "cpu" region covers them (meta: shape inference of
# an autocast model; check: the test suite's device)
_AS_TYPE = {"meta": "cpu", "check": "cpu"}
_LOW = (_dt.bfloat16, _dt.float16)
_F32 = _dt.float32
# numpy dtypes of the tensors autocast may cast (float64 and integers never are)
_ELIGIBLE = {_dt.float32.np: _dt.float32, _dt.float16.np: _dt.float16,
             _dt.bfloat16.np: _dt.bfloat16}


class _State:
    """One context's autocast settings: device type -> low dtype (None: disabled), the
    weight cache of the outermost region, and whether this region may use it."""

    __slots__ = ("dtypes", "cache", "cache_enabled")

    def __init__(self, dtypes: dict, cache: dict, cache_enabled: bool) -> None:
        self.dtypes, self.cache, self.cache_enabled = dtypes, cache, cache_enabled


_state: contextvars.ContextVar = contextvars.ContextVar("tinyfw_autocast", default=None)


def _device_type(t) -> str:
    d = t._data
    if type(d) is CPU_ARRAY:
        return "cpu"
    kind = d.device.type
    return _AS_TYPE.get(kind, kind)


def _cacheable(t, st: _State, dtype) -> bool:
    """A float32 parameter-like leaf (requires grad, no history, not a view) whose cast to
    `dtype` may come from the cache."""
    return (st.cache_enabled and t._rg and t.grad_fn is None and t._base is None
            and t._data.dtype == _F32.np and _tensor_mod._trace_hook.get() is None
            and st.dtypes.get(_device_type(t)) is dtype)


def _to(t, dtype, st: _State):
    """`t` cast to `dtype` through the dispatcher (a recorded, differentiable Cast); a view
    of a cacheable leaf is the cached cast of the leaf with the view chain replayed on it."""
    v = t._view
    if v is not None and t._rg and not v[NO_GRAD] and _cacheable(v[BASE], st, dtype):
        base = apply(Cast, (v[BASE],), {"dtype": dtype})
        return replay(base, chain(v), apply)
    return apply(Cast, (t,), {"dtype": dtype})


class _Interceptor:
    """The dispatcher hook; one instance, installed in a context while a region is open."""

    rewrites_inputs = True  # runs outside the tracer and profiler (dispatch.push_interceptor)

    def intercept(self, fn, inputs, attrs, run):
        st = _state.get()
        if fn is Cast:
            return self._cast(st, inputs, attrs, run)
        policy = fn.autocast
        if policy is None or st is None or InBackward._var.get():
            return run(inputs)
        kinds = [(t, _ELIGIBLE.get(t._data.dtype)) for t in inputs]
        floats = [(t, d) for t, d in kinds if d is not None]
        if not floats:
            return run(inputs)
        low = st.dtypes.get(_device_type(floats[0][0]))
        if low is None:
            return run(inputs)
        if policy == "lower":
            want = low
        elif policy == "float32":
            want = _F32
        else:  # promote: mixed float dtypes run in float32, the widest of them
            if len({d for _, d in floats}) == 1:
                return run(inputs)
            want = _F32
        return run([_to(t, want, st) if d is not None and d is not want else t
                    for t, d in kinds])

    def _cast(self, st, inputs, attrs, run):
        """A Cast of a parameter to the region's dtype: from the weight cache."""
        t, dtype = inputs[0], attrs["dtype"]
        if st is None or not _cacheable(t, st, dtype):
            return run(inputs)
        key = (id(t), dtype, GradMode._var.get())
        hit = st.cache.get(key)
        if hit is not None and hit[0] is t and hit[2] == t._version[0]:
            return hit[1]
        out = run(inputs)
        st.cache[key] = (t, out, t._version[0])  # holds t: its id stays unique meanwhile
        return out

    def trace_key(self) -> tuple:
        """What a traced graph made under the current region is specialised on (jit)."""
        st = _state.get()
        if st is None:
            return ()
        return tuple(sorted((k, v.name) for k, v in st.dtypes.items() if v is not None))

    def casts_inputs(self, fn, t) -> bool:
        """True when op `fn` under the current region casts the floating tensor `t`."""
        st = _state.get()
        if st is None or fn.autocast is None or InBackward._var.get():
            return False
        return (t._data.dtype in _ELIGIBLE
                and st.dtypes.get(_device_type(t)) is not None)


_INTERCEPTOR = _Interceptor()


class autocast:
    """Context manager and decorator: ops inside run in mixed precision.

    ``device_type``: 'cpu' (also covers the meta and check devices) or 'cuda';
    ``dtype``: tinyfw.bfloat16 or tinyfw.float16 (default: bfloat16 on cpu, float16 on
    cuda); ``enabled=False`` turns autocast off inside an enclosing region;
    ``cache_enabled``: reuse the casts of parameters within the region (the default).
    Regions nest; the setting of the innermost applies.  See the module doc and
    docs/amp.md for the op policy."""

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True,
                 cache_enabled: bool = True) -> None:
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: device_type must be a string such as 'cpu' or "
                            f"'cuda', got {device_type!r}")
        kind = _AS_TYPE.get(device_type.partition(":")[0], device_type.partition(":")[0])
        if kind not in DEFAULT_DTYPES:
            raise ValueError(f"autocast: unsupported device_type {device_type!r}; expected "
                             f"one of {sorted(DEFAULT_DTYPES)}")
        dtype = DEFAULT_DTYPES[kind] if dtype is None else _dt.as_dtype(dtype)
        if dtype not in _LOW:
            raise ValueError(f"autocast: dtype must be tinyfw.bfloat16 or tinyfw.float16, "
                             f"got {dtype.name}")
        self.device_type, self.fast_dtype = kind, dtype
        self.enabled, self.cache_enabled = bool(enabled), bool(cache_enabled)
        self._saved: list = []

    def __enter__(self) -> "autocast":
        prev = _state.get()
        dtypes = dict(prev.dtypes) if prev is not None else {}
        dtypes[self.device_type] = self.fast_dtype if self.enabled else None
        cache = prev.cache if prev is not None else {}
        token = _state.set(_State(dtypes, cache, self.cache_enabled))
        pushed = _INTERCEPTOR not in interceptors()
        if pushed:
            push_interceptor(_INTERCEPTOR)
        self._saved.append((token, pushed))
        return self

    def __exit__(self, *exc) -> bool:
        token, pushed = self._saved.pop()
        if pushed:
            pop_interceptor(_INTERCEPTOR)
        _state.reset(token)  # the outermost region's exit drops the weight cache with it
        return False

    def __call__(self, fn):
        args = (self.device_type, self.fast_dtype, self.enabled, self.cache_enabled)

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with autocast(*args):
                return fn(*a, **kw)

        return wrapper


def _kind(device_type: str) -> str:
    kind = device_type.partition(":")[0]
    return _AS_TYPE.get(kind, kind)


def is_autocast_enabled(device_type: str = "cpu") -> bool:
    """True inside an enabled autocast region for `device_type`."""
    st = _state.get()
    return st is not None and st.dtypes.get(_kind(device_type)) is not None


def get_autocast_dtype(device_type: str = "cpu"):
    """The low dtype of the innermost enabled region for `device_type` (the device type's
    default, bfloat16 on cpu and float16 on cuda, outside one)."""
    st = _state.get()
    kind = _kind(device_type)
    if kind not in DEFAULT_DTYPES:
        raise ValueError(f"get_autocast_dtype: unsupported device_type {device_type!r}")
    dt = st.dtypes.get(kind) if st is not None else None
    return dt if dt is not None else DEFAULT_DTYPES[kind]
