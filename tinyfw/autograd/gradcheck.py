"""Finite-difference checks of autograd: `gradcheck` and `gradgradcheck`.

The numerical Jacobian comes from central differences in float64; the analytical one
from vector-Jacobian products with unit vectors.  Inputs should be float64: in float32 the
differences drown in rounding.
"""
from __future__ import annotations

import numpy as np

from .engine import grad as _grad
from .function import enable_grad, no_grad


class GradcheckError(AssertionError):
    """Raised by gradcheck when the analytical and numerical Jacobians differ."""


def _outputs(fn, inputs) -> list:
    from ..tensor import Tensor

    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _flat_outputs(fn, inputs) -> np.ndarray:
    with no_grad():
        outs = _outputs(fn, inputs)
    if not outs:
        return np.zeros(0)
    return np.concatenate([np.asarray(o._data, np.float64).ravel() for o in outs])


def _check_inputs(inputs, op: str) -> list:
    from ..tensor import Tensor

    idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not idx:
        raise ValueError(f"{op}: no input requires grad")
    for i in idx:
        if inputs[i].dtype.name != "float64":
            raise TypeError(f"{op}: input {i} is {inputs[i].dtype.name}; finite differences need "
                            "float64 inputs (call .double())")
    return idx


def numerical_jacobian(fn, inputs, eps: float = 1e-6) -> list[np.ndarray]:
    """d(flattened outputs)/d(each input requiring grad), by central differences."""
    inputs = tuple(inputs)
    jacs = []
    for i in _check_inputs(inputs, "numerical_jacobian"):
        data = inputs[i]._data
        cols = []
        flat_idx = np.ndindex(*data.shape)
        for pos in flat_idx:
            orig = data[pos].item()
            data[pos] = orig + eps
            plus = _flat_outputs(fn, inputs)
            data[pos] = orig - eps
            minus = _flat_outputs(fn, inputs)
            data[pos] = orig
            cols.append((plus - minus) / (2 * eps))
        n_out = _flat_outputs(fn, inputs).size
        jacs.append(np.stack(cols, axis=1) if cols else np.zeros((n_out, 0)))
    return jacs


def analytical_jacobian(fn, inputs) -> list[np.ndarray]:
    """The same Jacobians, from autograd: one backward per output element."""
    from ..tensor import Tensor

    inputs = tuple(inputs)
    idx = _check_inputs(inputs, "analytical_jacobian")
    wrt = [inputs[i] for i in idx]
    outs = _outputs(fn, inputs)
    sizes = [o.numel() for o in outs]
    n_out = sum(sizes)
    jacs = [np.zeros((n_out, t.numel())) for t in wrt]
    row = 0
    for k, o in enumerate(outs):
        if not o.requires_grad:
            row += sizes[k]
            continue
        for j in range(sizes[k]):
            onehot = np.zeros(o.shape, o._data.dtype)
            onehot.reshape(-1)[j] = 1
            gouts = [Tensor._make(onehot) if m == k else None for m in range(len(outs))]
            used = [m for m in range(len(outs)) if gouts[m] is not None]
            gs = _grad([outs[m] for m in used], wrt, [gouts[m] for m in used],
                       retain_graph=True, allow_unused=True)
            for c, g in enumerate(gs):
                if g is not None:
                    jacs[c][row + j] = np.asarray(g._data, np.float64).ravel()
        row += sizes[k]
    return jacs


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
        bad = np.abs(a - n) > atol + rtol * np.abs(n)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            if not raise_exception:
                return False
            raise GradcheckError(
                f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(inputs[i].shape)}) at "
                f"output element {r}, input element {c}: analytical {a[r, c]:.8g} vs numerical "
                f"{n[r, c]:.8g} ({int(bad.sum())} of {bad.size} entries differ)")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """gradcheck of the gradient itself: checks second-order derivatives of ``fn``."""
    from ..tensor import Tensor

    inputs = tuple(inputs)
    idx = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor._make(rng.standard_normal(o.shape)).requires_grad_() for o in outs]
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
