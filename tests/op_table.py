"""The three-way check of the PyTorch-surface ops (issue 16): each op is one `OpCase` in a
table, and `check(case, kind)` runs one of

- ``"torch64"`` / ``"torch32"``: tinyfw against PyTorch, forward and the gradient of every
  float input for one random upstream gradient, in float64 and float32;
- ``"gradcheck"``: autograd's Jacobian against float64 central differences (and, with
  ``gradgrad=True``, the second derivatives: backward formulas are tinyfw ops);
- ``"ref"``: the active backend (the C++ kernels, or the checking device) against the numpy
  reference backend on the same float32 inputs.

A test file holds the table and one parametrised test::

    CASES = [OpCase("tan", lambda x: x.tan(), lambda x: x.tan(), unary((3, 4)))]

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_op(case, kind):
        check(case, kind)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import tinyfw
from helpers import assert_close, from_np, npy, torch
from nn_check import tol

KINDS = ["torch64", "torch32", "gradcheck", "ref"]


@dataclass
class OpCase:
    """One op on one input recipe.

    `tf` and `th` take the inputs in the same order (tinyfw tensors / torch tensors; numpy
    arrays of `inputs` become tensors, anything else is passed as it is) and return a tensor
    or a tuple of them.  `inputs(rng, dtype)` makes the arguments for a float dtype.
    `th=None` means PyTorch has no twin (the torch checks are then skipped with a reason,
    which `why_no_torch` gives).  `grad=False`: the op has no gradient (integer/bool results,
    or a piecewise-constant function).  `frozen`: positions of float inputs that get no
    gradient.  `terms`: how many rounded products one output sums (widens float32's
    tolerance as sqrt(terms)).  `eps`/`gc_atol`: gradcheck's step and tolerance, for ops
    whose second derivative is large near the inputs."""
    name: str
    tf: Callable
    th: Callable | None
    inputs: Callable
    grad: bool = True
    gradgrad: bool = False
    frozen: tuple = ()
    terms: int = 1
    eps: float = 1e-6
    gc_atol: float = 1e-5
    why_no_torch: str = ""
    kinds: tuple = tuple(KINDS)


def case_id(case: OpCase) -> str:
    return case.name


def unary(*shape: int, low: float = -2.0, high: float = 2.0) -> Callable:
    """An input recipe: one uniform array in [low, high) of `shape`."""
    return lambda rng, dtype: [rng.uniform(low, high, shape).astype(dtype)]


def normal(*shapes: tuple) -> Callable:
    """An input recipe: standard normal arrays of the given shapes."""
    return lambda rng, dtype: [rng.standard_normal(s).astype(dtype) for s in shapes]


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _tf_args(case: OpCase, arrays: list, requires_grad: bool) -> list:
    out = []
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            t = from_np(np.array(a))
            if requires_grad and case.grad and _is_float(a) and k not in case.frozen:
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def _th_args(case: OpCase, arrays: list) -> list:
    out = []
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            rg = case.grad and _is_float(a) and k not in case.frozen
            out.append(torch.from_numpy(np.array(a)).requires_grad_(rg))
        else:
            out.append(a)
    return out


def check_torch(case: OpCase, dtype: str, seed: int = 0) -> None:
    """tinyfw against PyTorch: every output, then every float input's gradient."""
    if torch is None:
        pytest.skip("PyTorch is not installed (pip install torch==2.13.0 for the oracle tests)")
    if case.th is None:
        pytest.skip(f"{case.name}: PyTorch has no twin ({case.why_no_torch})")
    arrays = case.inputs(np.random.default_rng(seed), dtype)
    xf, xt = _tf_args(case, arrays, True), _th_args(case, arrays)
    of, ot = _flat(case.tf(*xf)), _flat(case.th(*xt))
    assert len(of) == len(ot), f"{case.name}: {len(of)} outputs vs PyTorch's {len(ot)}"
    for i, (a, b) in enumerate(zip(of, ot)):
        assert isinstance(a, tinyfw.Tensor), f"{case.name}: output {i} is {type(a).__name__}"
        got = npy(a).dtype
        want = b.detach().numpy().dtype if b.dtype != torch.bfloat16 else None
        if want is not None:
            assert got == want, f"{case.name}: output {i} has dtype {got}, PyTorch's {want}"
        assert_close(a, b, dtype, msg=f"{case.name}: output {i}", **tol(dtype, case.terms))
    if not case.grad:
        return
    rng = np.random.default_rng(seed + 1)
    lf, lt = None, None
    for a, b in zip(of, ot):
        if b.requires_grad:
            g = rng.standard_normal(tuple(b.shape)).astype(dtype)
            assert a.requires_grad, f"{case.name}: the output does not require grad"
            sf, st = (a * tinyfw.tensor(g)).sum(), (b * torch.from_numpy(g)).sum()
            lf, lt = (sf, st) if lf is None else (lf + sf, lt + st)
    if lf is None:
        return
    lf.backward()
    lt.backward()
    for i, (a, b) in enumerate(zip(xf, xt)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            if b.grad is None:
                assert a.grad is None or not npy(a.grad).any(), f"{case.name}: input {i}"
                continue
            assert a.grad is not None, f"{case.name}: input {i} got no gradient"
            assert_close(a.grad, b.grad, dtype, msg=f"{case.name}: grad of input {i}",
                         **tol(dtype, case.terms))


def check_gradcheck(case: OpCase, seed: int = 0) -> None:
    """float64 finite differences against autograd (and second derivatives if asked)."""
    if not case.grad:
        pytest.skip(f"{case.name} has no gradient")
    arrays = case.inputs(np.random.default_rng(seed), "float64")
    xs = _tf_args(case, arrays, True)
    idx = [k for k, x in enumerate(xs) if isinstance(x, tinyfw.Tensor) and x.requires_grad]
    assert idx, f"{case.name}: no input requires grad"

    def fn(*leaves):
        args = list(xs)
        for k, v in zip(idx, leaves):
            args[k] = v
        return tuple(o for o in _flat(case.tf(*args)) if o.dtype.is_floating_point)

    leaves = [xs[k] for k in idx]
    assert tinyfw.gradcheck(fn, leaves, eps=case.eps, atol=case.gc_atol)
    if case.gradgrad:
        assert tinyfw.gradgradcheck(fn, leaves, eps=case.eps, atol=case.gc_atol)


def check_ref(case: OpCase, seed: int = 0) -> None:
    """The active backend against the numpy reference backend, float32 inputs, forward
    and (when the op has one) backward."""
    arrays = case.inputs(np.random.default_rng(seed), "float32")
    rng = np.random.default_rng(seed + 1)
    results = []
    before = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    for backend in (before, "ref"):
        tinyfw.set_backend(backend)
        try:
            xs = _tf_args(case, arrays, True)
            outs = _flat(case.tf(*xs))
            vals = [npy(o) for o in outs]
            grads = []
            diff = [o for o in outs if o.requires_grad]
            if diff:
                gen = np.random.default_rng(seed + 1)
                loss = None
                for o in diff:
                    g = tinyfw.tensor(gen.standard_normal(tuple(o.shape)).astype(npy(o).dtype))
                    s = (o * g).sum()
                    loss = s if loss is None else loss + s
                loss.backward()
                grads = [npy(x.grad) if x.grad is not None else None
                         for x in xs if isinstance(x, tinyfw.Tensor) and x.requires_grad]
            results.append((vals, grads))
        finally:
            tinyfw.set_backend(before if before in ("cpu", "ref") else "cpu")
    del rng
    (va, ga), (vb, gb) = results
    t = tol("float32", case.terms)
    for i, (a, b) in enumerate(zip(va, vb)):
        assert a.dtype == b.dtype, f"{case.name}: output {i} dtype {a.dtype} vs ref {b.dtype}"
        np.testing.assert_allclose(a.astype(np.float64) if a.dtype.kind != "b" else a,
                                   b.astype(np.float64) if b.dtype.kind != "b" else b,
                                   equal_nan=True, err_msg=f"{case.name}: output {i}", **t)
    for i, (a, b) in enumerate(zip(ga, gb)):
        assert (a is None) == (b is None), f"{case.name}: grad {i} present on one backend only"
        if a is not None:
            np.testing.assert_allclose(a, b, equal_nan=True,
                                       err_msg=f"{case.name}: grad of input {i}", **t)


def check(case: OpCase, kind: str) -> None:
    """Run one of the checks named in KINDS."""
    if kind not in case.kinds:
        pytest.skip(f"{case.name}: {kind} does not apply")
    if kind == "torch64":
        check_torch(case, "float64")
    elif kind == "torch32":
        check_torch(case, "float32")
    elif kind == "gradcheck":
        check_gradcheck(case)
    elif kind == "ref":
        check_ref(case)
    else:
        raise ValueError(f"unknown check {kind!r}")
