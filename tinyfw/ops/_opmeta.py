"""Helpers for writing an op's metadata (see `Function`'s class doc): C expressions for the
jit's generated elementwise kernels and FLOP rules for the profiler.

Each helper returns a ``staticmethod``, so that it reads the same through the class (as
the jit and the profiler use it) and through a graph node (an instance).
"""
from __future__ import annotations

import math

# C math functions a template may name ({exp}, {sqrt} ...).  The float versions take the
# "f" suffix, except exp and erf, which the generated kernels define themselves as
# tf_expf / tf_erff (vectorisable, see the prelude in jit/kernels.py).
_C_MATH = frozenset({"exp", "log", "sqrt", "tanh", "erf", "sin", "cos", "fabs"})


def cfun(name: str, ctype: str) -> str:
    """The C function computing `name` in `ctype` ('float' or 'double')."""
    if ctype == "float" and name in ("exp", "erf"):
        return "tf_" + name + "f"
    return name + ("f" if ctype == "float" else "")


def clit(x: float, ctype: str) -> str:
    """A C literal of the number `x` in `ctype`."""
    return f"(({ctype}){float(x)!r})"


class _Names(dict):
    """Template fields: the inputs a, b, c, the type t, and the C math functions."""

    def __init__(self, args: list, ctype: str) -> None:
        super().__init__(zip("abc", args), t=ctype)
        self.ctype = ctype

    def __missing__(self, key: str) -> str:
        if key not in _C_MATH:
            raise KeyError(f"C template: unknown field {{{key}}} (inputs are {{a}}, {{b}}, "
                           f"{{c}}, the type {{t}}, functions {sorted(_C_MATH)})")
        return cfun(key, self.ctype)


def c_template(template: str) -> staticmethod:
    """A ``c_expr`` from a template: ``{a}``, ``{b}``, ``{c}`` are the inputs' C names,
    ``{t}`` the C type, ``{exp}``, ``{sqrt}`` ... the math functions in that type, e.g.
    ``c_template("(1 / {sqrt}({a}))")``.  Ops with attributes write the function."""

    def c_expr(args: list, ctype: str, attrs: dict) -> str:
        return template.format_map(_Names(args, ctype))

    return staticmethod(c_expr)


# sigmoid without overflow: exp of a non-positive number only (shared by sigmoid and silu)
C_SIGMOID = "({a} >= 0 ? 1 / (1 + {exp}(-{a})) : {exp}({a}) / (1 + {exp}({a})))"

# generated-kernel costs per element (see Function.cost)
COST_DIVISION = 4
COST_TRANSCENDENTAL = 16


# -- FLOP rules: (in_shapes, out_shapes, attrs) -> int ----------------------------------------
TRANSCENDENTAL_FLOPS = 4  # FLOPs counted per element of exp, log, tanh, erf ...


def _no_flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
    """Views, copies, gathers and scatters: no arithmetic."""
    return 0


no_flops = staticmethod(_no_flops)


def per_output(k: int) -> staticmethod:
    """`k` FLOPs per element of the first output (elementwise ops; transcendental 4)."""

    def flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
        return k * math.prod(out_shapes[0]) if out_shapes else 0

    return staticmethod(flops)


def per_input(k: int) -> staticmethod:
    """`k` FLOPs per element of all inputs together (reductions 1, softmax-like 5)."""

    def flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
        return k * sum(math.prod(s) for s in in_shapes)

    return staticmethod(flops)


def _per_first_input(in_shapes: list, out_shapes: list, attrs: dict) -> int:
    """One FLOP per element of the first input (pooling windows)."""
    return math.prod(in_shapes[0]) if in_shapes else 0


per_first_input = staticmethod(_per_first_input)


# -- vector_kernel: eager's float32 kernel is hand-vectorised ---------------------------------
# ``vector_kernel = True`` says that the op's float32 CPU kernel is a hand-vectorised loop:
# csrc's vector math (elementwise_vmath.cpp, vmath_*.h: exp, log, tanh, sigmoid, silu, erf,
# GELU ...) or a vectorised row kernel (nn_rows.h: norms, softmax, cross-entropy).  The
# jit never puts such an op into a generated kernel in a float32 graph (jit/kernels.py,
# ``eager_reason``): what GCC makes of the op's C expression is at best as fast, and for
# libm calls (tanhf, logf) it is scalar, ~15x slower, and keeps the whole fused loop from
# vectorising.  False (the Function default): eager runs the op with scalar code or plain
# compiler-vectorised arithmetic, which a generated kernel matches.
