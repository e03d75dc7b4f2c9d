"""The programs of the traced == eager property (tests/test_jit_property.py): leaves,
instructions, `apply` (one instruction on tinyfw tensors) and `Program` (a function of
its input tensors, printable as code).  The hypothesis strategy that draws them is
tests/jit_programs.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import tinyfw

FLOATS = ("float32", "float64")
SCALARS = (0.0, 1.0, -1.0, 2.0, 0.5, -3.0)
UNARY_F = ("neg", "abs", "relu", "exp", "tanh", "sigmoid", "sin", "square", "gelu", "silu",
           "sqrt_abs", "log1p_abs", "clamp", "floor", "reciprocal_pos")
UNARY_I = ("neg", "abs")
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
COMPARE = ("gt", "lt", "ge", "eq", "ne")
LOGICAL = ("logical_and", "logical_or", "logical_xor")


@dataclass
class Leaf:
    """A leaf register: an input (passed in), a const (closed over, baked into the trace)
    or a param (closed over, requires grad: captured live)."""

    kind: str          # input | const | param
    shape: tuple
    dtype: str         # float32 | float64 | int64 | bool
    rg: bool = False
    fill: str = "normal"   # normal | ints (small integers: ties, zeros) | index:N | mask

    def make(self, rng: np.random.Generator) -> tinyfw.Tensor:
        """A tensor of this leaf's kind with fresh values from `rng`."""
        if self.fill.startswith("index:"):
            a = rng.integers(0, int(self.fill[6:]), self.shape).astype(np.int64)
        elif self.dtype == "bool":
            a = rng.random(self.shape) < 0.5
        elif self.fill == "ints" or self.dtype == "int64":
            a = rng.integers(-3, 4, self.shape).astype(self.dtype)
        else:
            a = rng.standard_normal(self.shape).astype(self.dtype)
        return tinyfw.tensor(a, requires_grad=self.rg)


@dataclass
class Instr:
    """One op: its name, the registers it reads and its parameters."""

    op: str
    args: tuple
    params: dict = field(default_factory=dict)


def apply(ins: Instr, regs: list) -> tinyfw.Tensor:
    """Run one instruction on tinyfw tensors (eagerly, or under the tracer)."""
    op, p = ins.op, ins.params
    a = [regs[i] for i in ins.args]
    x = a[0]
    if op in ("neg", "abs", "relu", "exp", "tanh", "sigmoid", "sin", "floor"):
        return getattr(x, op)()
    if op == "square":
        return x * x
    if op in ("gelu", "silu"):
        return getattr(tinyfw.nn.functional, op)(x)
    if op == "sqrt_abs":
        return x.abs().sqrt()
    if op == "log1p_abs":
        return x.abs().log1p()
    if op == "reciprocal_pos":
        return 1.0 / (x * x + 1.0)
    if op == "clamp":
        return x.clamp(-0.5, 1.0)
    if op == "scalar":
        c = p["c"]
        return {"add": lambda: x + c, "mul": lambda: x * c, "rsub": lambda: c - x,
                "div": lambda: x / c, "pow2": lambda: x ** 2}[p["how"]]()
    if op in ("add", "sub", "mul", "div"):
        return {"add": x.__add__, "sub": x.__sub__, "mul": x.__mul__,
                "div": x.__truediv__}[op](a[1])
    if op in ("maximum", "minimum", "logical_and", "logical_or", "logical_xor"):
        return getattr(tinyfw, op)(x, a[1])
    if op in COMPARE:
        return getattr(x, op)(a[1])
    if op == "logical_not":
        return tinyfw.logical_not(x)
    if op == "where":
        return tinyfw.where(x, a[1], a[2])
    if op == "masked_fill":
        return x.masked_fill(a[1], p["value"])
    if op == "cast":
        return x.to(getattr(tinyfw, p["dtype"]))
    if op in ("sum", "mean", "amax"):
        return getattr(x, op)(dim=p["dims"], keepdim=p["keepdim"])
    if op == "max_dim":
        return x.max(p["dim"], keepdim=p["keepdim"])[p["which"]]
    if op == "matmul":
        return x @ a[1]
    if op == "reshape":
        return x.reshape(*p["shape"])
    if op == "permute":
        return x.permute(*p["dims"])
    if op == "transpose":
        return x.transpose(p["d0"], p["d1"])
    if op == "expand":
        return x.expand(*p["shape"])
    if op == "unsqueeze":
        return x.unsqueeze(p["dim"])
    if op == "squeeze":
        return x.squeeze(p["dim"])
    if op == "flatten":
        return x.flatten()
    if op == "slice":
        idx = (slice(None),) * p["dim"] + (slice(p["start"], p["stop"], p["step"]),)
        return x[idx]
    if op == "select":
        return x.select(p["dim"], p["i"])
    if op == "flip":
        return x.flip(p["dims"])
    if op == "cat":
        return tinyfw.cat(a, p["dim"])
    if op == "stack":
        return tinyfw.stack(a, p["dim"])
    if op == "gather":
        return tinyfw.gather(x, p["dim"], a[1])
    if op == "index_select":
        return x.index_select(p["dim"], a[1])
    if op == "index":
        return x[(slice(None),) * p["dim"] + (a[1],)]
    raise ValueError(f"unknown op {op}")


@dataclass
class Program:
    """Steps (each a `Leaf` or an `Instr`, register k is step k's value) and the
    registers returned; see the module doc."""

    steps: list
    outputs: tuple

    @property
    def leaves(self) -> list:
        return [s for s in self.steps if isinstance(s, Leaf)]

    def instantiate(self, seed: int):
        """(fn, inputs, params): the program as a function of its input tensors, closing
        over its constants and params, made from `seed`."""
        rng = np.random.default_rng(seed)
        made = [lf.make(rng) for lf in self.leaves]
        inputs = [t for t, lf in zip(made, self.leaves) if lf.kind == "input"]
        params = [t for t, lf in zip(made, self.leaves) if lf.kind == "param"]

        def fn(*xs):
            it, closed = iter(xs), iter(made)
            regs: list = []
            for s in self.steps:
                if isinstance(s, Leaf):
                    t = next(closed)
                    regs.append(next(it) if s.kind == "input" else t)
                else:
                    regs.append(apply(s, regs))
            outs = tuple(regs[i] for i in self.outputs)
            return outs[0] if len(outs) == 1 else outs

        return fn, inputs, params

    def fresh(self, seed: int, params: list) -> list:
        """New input tensors (same structure) from `seed`; `params` get new values too
        (in place, as an optimizer step would: a traced graph must read them live)."""
        rng = np.random.default_rng(seed)
        made = [lf.make(rng) for lf in self.leaves]
        it = iter(params)
        for t, lf in zip(made, self.leaves):
            if lf.kind == "param":
                with tinyfw.no_grad():
                    next(it).copy_(t.detach())
        return [t for t, lf in zip(made, self.leaves) if lf.kind == "input"]

    def __str__(self) -> str:
        names, lines = [], []
        for s in self.steps:
            if isinstance(s, Leaf):
                names.append(f"{'x' if s.kind == 'input' else s.kind[0]}{len(names)}")
                lines.append(f"{names[-1]} = {s.kind} {s.dtype}{list(s.shape)}"
                             + (" requires_grad" if s.rg else "")
                             + (f" {s.fill}" if s.fill != "normal" else ""))
            else:
                names.append(f"v{len(names)}")
                args = [names[j] for j in s.args] + [f"{k}={v!r}" for k, v in s.params.items()]
                lines.append(f"{names[-1]} = {s.op}({', '.join(args)})")
        lines.append("return " + ", ".join(names[i] for i in self.outputs))
        return "\n".join(lines)
