"""Finite-difference checks of autograd: `gradcheck` and `gradgradcheck`.

The numerical Jacobian comes from central differences in float64; the analytical one
from vector-Jacobian products with unit vectors.  Inputs should be float64: in float32 the
differences drown in rounding.

Everything here goes through tinyfw ops, so the checks run on any device whose tensors
hold values: an input is perturbed by writing one element through the backend (the
input's own memory, so `fn` sees it however it holds the input), and outputs and
gradients are read back as float64 CPU tensors.  Jacobians are float64 CPU tensors of
shape (number of output elements, number of input elements).
"""
from __future__ import annotations

from .engine import grad as _grad
from .function import enable_grad, no_grad


class GradcheckError(AssertionError):
    """Raised by gradcheck when the analytical and numerical Jacobians differ."""


def _outputs(fn, inputs) -> list:
    from ..tensor import Tensor

    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _host_f64(t):
    """t's values, flattened, as a float64 CPU tensor (detached)."""
    from .. import dtypes as _dt

    return t.detach().to(_dt.float64).reshape(-1).cpu()


def _flat_outputs(fn, inputs):
    from ..creation import zeros
    from ..ops.index import cat

    with no_grad():
        outs = _outputs(fn, inputs)
        if not outs:
            from .. import dtypes as _dt

            return zeros(0, dtype=_dt.float64, device="cpu")
        return cat([_host_f64(o) for o in outs])


def _check_inputs(inputs, op: str) -> list:
    from ..tensor import Tensor

    idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not idx:
        raise ValueError(f"{op}: no input requires grad")
    for i in idx:
        if inputs[i].dtype.name != "float64":
            raise TypeError(f"{op}: input {i} is {inputs[i].dtype.name}; finite differences need "
                            "float64 inputs (call .double())")
        if inputs[i].is_meta:
            raise RuntimeError(f"{op}: input {i} is on the 'meta' device, which holds no values "
                               "to differentiate numerically")
    return idx


def _positions(shape: tuple):
    """Every index tuple of `shape`, in row-major order."""
    if not shape:
        yield ()
        return
    n = 1
    for s in shape:
        n *= s
    for flat in range(n):
        pos = []
        for s in reversed(shape):
            flat, r = divmod(flat, s)
            pos.append(r)
        yield tuple(reversed(pos))


def _set(data, pos: tuple, value: float) -> None:
    # one element written in place through the backend; the perturbation is undone
    # before anyone can observe it, so the version counter is put back as it was
    version = data._version[0]
    data[pos] = value
    data._version[0] = version


def numerical_jacobian(fn, inputs, eps: float = 1e-6) -> list:
    """d(flattened outputs)/d(each input requiring grad), by central differences."""
    from .. import dtypes as _dt
    from ..creation import zeros
    from ..ops.index import stack

    inputs = tuple(inputs)
    jacs = []
    for i in _check_inputs(inputs, "numerical_jacobian"):
        data = inputs[i].detach()
        values = data.reshape(-1).tolist()
        cols = []
        with no_grad():
            for orig, pos in zip(values, _positions(tuple(data.shape))):
                _set(data, pos, orig + eps)
                plus = _flat_outputs(fn, inputs)
                _set(data, pos, orig - eps)
                minus = _flat_outputs(fn, inputs)
                _set(data, pos, orig)
                cols.append((plus - minus) / (2 * eps))
        if cols:
            jacs.append(stack(cols, 1))
        else:
            n_out = _flat_outputs(fn, inputs).numel()
            jacs.append(zeros(n_out, 0, dtype=_dt.float64, device="cpu"))
    return jacs


def analytical_jacobian(fn, inputs) -> list:
    """The same Jacobians, from autograd: one backward per output element."""
    from .. import dtypes as _dt
    from ..creation import zeros
    from ..ops.index import stack

    inputs = tuple(inputs)
    idx = _check_inputs(inputs, "analytical_jacobian")
    wrt = [inputs[i] for i in idx]
    outs = _outputs(fn, inputs)
    rows: list = [[] for _ in wrt]
    for o in outs:
        for j in range(o.numel()):
            got = [None] * len(wrt)
            if o.requires_grad:
                onehot = o.new_zeros(o.shape)
                with no_grad():
                    onehot.reshape(-1)[j] = 1
                got = _grad([o], wrt, [onehot], retain_graph=True, allow_unused=True)
            for c, (t, g) in enumerate(zip(wrt, got)):
                rows[c].append(_host_f64(g) if g is not None
                               else zeros(t.numel(), dtype=_dt.float64, device="cpu"))
    n_out = sum(o.numel() for o in outs)
    return [stack(r) if r else zeros(n_out, t.numel(), dtype=_dt.float64, device="cpu")
            for r, t in zip(rows, wrt)]


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare autograd's Jacobian of ``fn(*inputs)`` with central differences.

    Returns True when they agree to ``atol + rtol * |numerical|``; otherwise raises
    GradcheckError naming the input and the worst element (or returns False).
    """
    inputs = tuple(inputs)
    idx = _check_inputs(inputs, "gradcheck")
    num = numerical_jacobian(fn, inputs, eps)
    ana = analytical_jacobian(fn, inputs)
    for i, n, a in zip(idx, num, ana):
        bad = (a - n).abs() > atol + rtol * n.abs()
        # a NaN on either side is a mismatch too (the comparison above is False for it)
        bad = bad | (a.isnan() != n.isnan())
        count = int(bad.sum())
        if count:
            k = int(bad.reshape(-1).to(_int64()).argmax())
            r, c = divmod(k, bad.shape[1])
            if not raise_exception:
                return False
            raise GradcheckError(
                f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(inputs[i].shape)}) at "
                f"output element {r}, input element {c}: analytical {float(a[r, c]):.8g} vs "
                f"numerical {float(n[r, c]):.8g} ({count} of {bad.numel()} entries differ)")
    return True


def _int64():
    from .. import dtypes as _dt

    return _dt.int64


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """gradcheck of the gradient itself: checks second-order derivatives of ``fn``."""
    from .. import dtypes as _dt
    from ..creation import randn
    from ..random import Generator

    inputs = tuple(inputs)
    idx = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        gen = Generator(seed)
        grad_outputs = [randn(o.shape, generator=gen, dtype=_dt.float64, device=o.device,
                              requires_grad=True) for o in outs]
    n_in = len(inputs)

    def first_grads(*args):
        xs, gos = args[:n_in], args[n_in:]
        with enable_grad():  # the finite differences run under no_grad; this needs a graph
            ys = _outputs(fn, xs)
            return _grad(ys, [xs[i] for i in idx], list(gos), create_graph=True,
                         allow_unused=True)

    def wrapped(*args):
        return tuple(g for g in first_grads(*args) if g is not None)

    return gradcheck(wrapped, inputs + tuple(grad_outputs), eps, atol, rtol, raise_exception)
