"""The issue-16 elementwise math ops in the shared device tables: `meta_cases` for
tests/test_meta_ops.py (every op runs on meta, forward and backward) and `device_cases`
for tests/test_conformance_devices.py (every ref_math primitive on the check and meta
devices).  Kept here so that those files gain one line each."""
from __future__ import annotations

import numpy as np

import tinyfw

_UNARY = ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
          "log10", "exp2", "lgamma", "digamma", "erfinv", "i0", "signbit", "deg2rad",
          "rad2deg", "frac", "fix", "sinc", "sgn", "angle", "positive")
_BINARY = ("hypot", "copysign", "fmod", "fmax", "fmin", "logaddexp", "logaddexp2", "xlogy",
           "nextafter", "igamma", "igammac", "ldexp", "float_power")


def meta_cases(In) -> dict:
    """name -> (fn, input specs), with `In` the spec class of test_meta_ops."""
    from tinyfw.ops import elementwise_special as S

    a23 = In((2, 3))
    cases = {f"math_{n}": (getattr(tinyfw, n), [a23]) for n in _UNARY}
    cases.update({f"math_{n}": (getattr(tinyfw, n), [In((2, 3)), In((3,))]) for n in _BINARY})
    cases.update({
        "math_logit": (lambda x: tinyfw.logit(x, 1e-3), [a23]),
        "math_polygamma": (lambda x: tinyfw.polygamma(2, x), [a23]),
        "math_i1": (S._i1, [a23]),
        "math_frexp": (tinyfw.frexp, [a23]),
        "math_heaviside": (tinyfw.heaviside, [In((2, 3), grad=False), In((3,), grad=False)]),
        "math_lerp": (tinyfw.lerp, [In((2, 3)), In((2, 3)), In((3,))]),
        "math_addcdiv": (lambda a, b, c: tinyfw.addcdiv(a, b, c, value=0.5),
                         [In((3,)), In((2, 3)), In((2, 1))]),
        "math_sin_": (lambda x: (x * 1).sin_(), [a23]),
        "math_tan_": (lambda x: (x * 1).tan_(), [a23]),
    })
    return cases


def _gen(kind: str, floats_only: bool = True, attrs: dict | None = None, arity: int = 1):
    def gen(draw, rng):
        from hypothesis import strategies as st

        from test_conformance_devices import ALL, FLOATS, shapes

        dt = draw(st.sampled_from(FLOATS if floats_only else ALL[:7]))
        s = draw(shapes)
        if kind == "unit":
            vals = lambda sh: rng.uniform(-0.99, 0.99, sh)
        elif kind == "pos":
            vals = lambda sh: rng.uniform(0.1, 3.0, sh)
        else:
            vals = lambda sh: rng.standard_normal(sh) * 3
        if dt.kind in "iu":  # nonzero integers of both signs (fmod's divisor)
            vals = lambda sh: rng.integers(1, 6, sh) * rng.choice([-1, 1], sh)
        elif dt.kind == "b":
            vals = lambda sh: rng.random(sh) < 0.5
        arrs = [np.asarray(vals(s)).astype(dt)]
        if arity == 2:
            b = s[draw(st.integers(0, len(s))):]
            b = tuple(1 if draw(st.booleans()) else n for n in b)
            arrs.append(np.asarray(vals(b)).astype(dt))
        return tuple(arrs), dict(attrs or {})
    return gen


def device_cases() -> dict:
    """primitive -> input generator, as CASES of test_conformance_devices."""
    cases = {n: _gen("normal") for n in ("tan", "atan", "sinh", "cosh", "asinh", "exp2",
                                         "lgamma", "digamma", "i0", "i1", "signbit", "frexp")}
    cases.update({n: _gen("unit") for n in ("asin", "acos", "atanh", "erfinv")})
    cases.update({n: _gen("pos") for n in ("acosh", "log2", "log10")})
    cases["logit"] = _gen("unit", attrs={"eps": 1e-3})
    cases["polygamma"] = _gen("pos", attrs={"n": 2})
    for n in ("copysign", "hypot", "nextafter", "logaddexp", "logaddexp2", "xlogy", "igamma",
              "igammac"):
        cases[n] = _gen("pos", arity=2)
    for n in ("fmod", "fmax", "fmin", "heaviside"):
        cases[n] = _gen("normal", floats_only=False, arity=2)
    cases["fmod"] = _gen("pos", floats_only=False, arity=2)  # (bool: refused by the op)
    return cases
