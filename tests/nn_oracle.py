"""Run a tinyfw module and its PyTorch twin on the same weights and inputs; compare the
outputs and the gradients of the inputs and of every parameter."""
from __future__ import annotations

import numpy as np

import tinyfw

from helpers import assert_close, npy, torch


def copy_weights(tmod, fmod) -> None:
    """Load torch module `tmod`'s state dict into tinyfw module `fmod` (strict)."""
    fmod.load_state_dict({k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()})


def _flat(out) -> list:
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def compare(tmod, fmod, inputs: list, dtype: str = "float32", grad_inputs=None,
            kwargs_t: dict | None = None, kwargs_f: dict | None = None, seed: int = 0,
            backward: bool = True, copy: bool = True) -> tuple:
    """inputs: numpy arrays (float ones get gradients unless grad_inputs says which).
    Returns (tinyfw outputs, torch outputs) as flat lists."""
    if copy:
        copy_weights(tmod, fmod)
    if grad_inputs is None:
        grad_inputs = [a.dtype.kind == "f" for a in inputs]
    xt = [torch.tensor(a, requires_grad=g) for a, g in zip(inputs, grad_inputs)]
    xf = [tinyfw.tensor(a, requires_grad=g) for a, g in zip(inputs, grad_inputs)]
    ot = _flat(tmod(*xt, **(kwargs_t or {})))
    of = _flat(fmod(*xf, **(kwargs_f or {})))
    assert len(ot) == len(of), f"{len(of)} outputs vs torch's {len(ot)}"
    for i, (a, b) in enumerate(zip(of, ot)):
        assert_close(a, b, dtype, msg=f"output {i}")
    if not backward:
        return of, ot
    rng = np.random.default_rng(seed)
    lt, lf = 0, 0
    for a, b in zip(of, ot):
        if b.requires_grad:
            g = rng.standard_normal(tuple(b.shape)).astype(b.detach().numpy().dtype)
            lt = lt + (b * torch.tensor(g)).sum()
            lf = lf + (a * tinyfw.tensor(g)).sum()
    lt.backward()
    lf.backward()
    for i, (a, b) in enumerate(zip(xf, xt)):
        if b.requires_grad:
            assert_close(a.grad, b.grad, dtype, msg=f"grad of input {i}")
    tparams = dict(tmod.named_parameters())
    for name, p in fmod.named_parameters():
        tp = tparams[name]
        if tp.grad is None:
            assert p.grad is None or not npy(p.grad).any(), name
        else:
            assert p.grad is not None, f"no gradient for {name}"
            assert_close(p.grad, tp.grad, dtype, msg=f"grad of {name}")
    return of, ot
