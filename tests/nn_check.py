"""Helpers of the nn.functional tests: run one function in tinyfw and in PyTorch on the same
data and compare the outputs and the gradients of every float input."""
from __future__ import annotations

import numpy as np

import tinyfw
from helpers import assert_close, from_np, torch

# float32 tolerance per summed term: one op rounds to ~6e-8 relative; a result that sums
# K products carries about sqrt(K) more, and PyTorch may sum in another order
F32 = 2e-6


def tol(dtype: str, terms: int = 1) -> dict:
    """rtol/atol for a result built from `terms` summed products (float64: the defaults)."""
    if dtype == "float64":
        return {"rtol": 1e-9, "atol": 1e-11 * max(1, terms)}
    scale = max(1.0, float(np.sqrt(terms)))
    return {"rtol": F32 * scale, "atol": F32 * scale}


def arrays(rng: np.random.Generator, shape, dtype: str, transposed: bool = False) -> np.ndarray:
    """Standard normal data; `transposed` gives a non-contiguous array of the same shape."""
    if transposed and len(shape) >= 2:
        a = rng.standard_normal(shape[::-1]).astype(dtype)
        return a.transpose(tuple(range(len(shape)))[::-1])
    return rng.standard_normal(shape).astype(dtype)


def compare(tf_fn, th_fn, inputs: list, dtype: str = "float64", terms: int = 1,
            seed: int = 0, grad_terms: int | None = None, frozen: tuple = (),
            grad_scale: float = 1.0) -> None:
    """Apply both functions to `inputs` (numpy arrays; float ones require grad, others
    are passed as-is, int arrays as int64 tensors; indices in `frozen` need no grad) and compare outputs and input grads
    for one random upstream gradient.  `grad_scale` is the magnitude of the terms a gradient
    is the difference of (e.g. 1/std for normalisations), which its absolute error scales with."""
    tf_in, th_in = [], []
    for k, a in enumerate(inputs):
        if isinstance(a, np.ndarray):
            rg = a.dtype.kind == "f" and k not in frozen
            t = from_np(a)
            tf_in.append(t.requires_grad_() if rg else t)
            # the oracle gets a row-major copy: PyTorch picks other kernels for other
            # layouts (a channels-last batch_norm loses float64 accuracy, for one)
            th_in.append(torch.from_numpy(np.array(a, order="C")).requires_grad_(rg))
        else:
            tf_in.append(a)
            th_in.append(a)
    out = tf_fn(*tf_in)
    ref = th_fn(*th_in)
    assert_close(out, ref, dtype, msg="forward", **tol(dtype, terms))
    if not out.requires_grad:
        return
    g = np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(dtype)
    out.backward(tinyfw.tensor(g))
    ref.backward(torch.from_numpy(g))
    for i, (a, b) in enumerate(zip(tf_in, th_in)):
        if isinstance(a, tinyfw.Tensor) and a.requires_grad:
            assert a.grad is not None, f"input {i} got no gradient"
            t = tol(dtype, terms if grad_terms is None else grad_terms)
            t["atol"] *= max(1.0, grad_scale)
            assert_close(a.grad, b.grad, dtype, msg=f"grad of input {i}", **t)


def leaves(rng: np.random.Generator, *shapes) -> list:
    """float64 leaf tensors requiring grad (for gradcheck)."""
    return [tinyfw.tensor(rng.standard_normal(s), dtype=tinyfw.float64, requires_grad=True)
            for s in shapes]
