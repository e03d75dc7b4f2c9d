"""How far may a traced graph WITH fusion drift from eager?  A first-order error bound.

Without the fusion passes a traced graph runs eager's own kernels on the same values, so
it must agree bit for bit.  The fusion passes change how elementwise ops are computed,
and only those: a generated C kernel evaluates each op's ``c_expr``

- with ``-ffp-contract=fast``: ``a * b + c`` may become one FMA (one rounding instead of
  two: the product's rounding, <= 1/2 ulp of it, is skipped);
- with its own float32 exp/erf (<= 1.5 and <= 3 ulp, tests/test_jit_kernels.py) and
  libm's float64 functions, where eager uses csrc's vector math or numpy: a transcendental
  op's result may differ by the sum of both errors plus the few roundings of its
  expression (sigmoid: exp, add, divide), which we bound by 8 ulp; gelu is
  x / 2 * (1 + erf(...)), whose erf error of a few ulp of 1 survives the cancellation at
  x < 0, so its 8 ulp are of max(|y|, |x| / 2);
- everything else (add, mul, div, sqrt, compares, selects) is one IEEE operation,
  correctly rounded in both, so it differs only through its inputs (1 ulp allowed, for
  the contraction above).

Reductions, matmul, shape and index ops run the same kernels in both modes; they only
pass on (and, for sums, re-round) differences of their inputs.

`bound(compiled, ...)` replays the fusion-free traced graph (forward, then backward as the
autograd engine runs it, once per differentiable output) and carries beside every value
an array E >= 0 such that the fused graph's value may differ from it by at most ~E:

- leaves and output gradients: E = 0 (both modes read the same arrays);
- elementwise node y = f(x1..xk): E_y = sum_i max(|f(.., x_i + E_i, ..) - f(x)|,
  |f(.., x_i - E_i, ..) - f(x)|) (evaluated in float64: a secant, so kinks such as relu
  at 0 are covered) + c * eps(dtype of y) * |y|, c = 8 for transcendental ops, else 2
  (the op's own rounding of perturbed inputs, its contraction into an FMA); an op that
  is never fused (no C expression) adds that term only where its inputs were perturbed;
  a bool or integer result that may flip under those perturbations is
  *uncertain* (E = inf: not compared, and neither is anything computed from it);
- linear ops with non-negative coefficients (views, copies, gathers, scatters, cat, sum,
  mean): E_y = op(E), plus, when E_y > 0, K * eps * op(|x|) for the re-rounding of the
  K terms summed into each output element (K = input/output size ratio + 1);
- matmul: |A| @ E_B + E_A @ |B| + E_A @ E_B (+ k eps |A| @ |B| where that is > 0);
- max reductions: the max of E over the group; their indices are uncertain where E > 0;
- any other op: E = 0 when its inputs are exact (same kernel, same values), otherwise
  `NoRule` (an op the generator should not reach without a rule).

The test allows |fused - eager| <= 2 E per element: E is a first-order bound, the factor
two covers the second-order terms (products of two differences, secants of curved
functions over [x - E, x + E]) with room to spare.  Where E == 0 the fused value must
equal eager's bit for bit.
"""
from __future__ import annotations

import numpy as np

from tinyfw.jit.executor import _Ctx
from tinyfw.ops import index as I
from tinyfw.ops import linalg as L
from tinyfw.ops import reduce as R
from tinyfw.ops import shape as S

# ops that are linear in their float inputs with coefficients >= 0 (their other inputs are
# indices, shapes or masks): applied to E they give E of the result
_LINEAR = {getattr(m, n) for m, names in (
    (S, ("View", "ReshapeCopy", "Permute", "Expand", "Slice", "SliceGrad", "Contiguous")),
    (I, ("Cat", "Pad", "Flip", "Tile", "Gather", "ScatterAdd", "Scatter", "Index",
         "IndexPut")),
    (R, ("Sum", "_SumGrad"))) for n in names if hasattr(m, n)}
_MAX = {R.Amax, R.MaxDim}
# the elementwise ops (fusable or not: not all declare a C expression)
# (their classes are defined in ops/_elementwise_*.py and re-exported by ops/elementwise.py,
# which sets their __module__)
_ELEMENTWISE_MODULES = {"tinyfw.ops.elementwise", "tinyfw.ops.convert"}
TRANSCENDENTAL_ULP = 8
# ops computed as x / 2 * (1 + f(x)) with f -> -1 for x < 0 (gelu, erf and tanh forms)
_CANCELLING = {"Gelu"}


class NoRule(Exception):
    """A perturbed value reached an op this bound has no rule for."""


def _float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0


def _abs64(a):
    # np.asarray: numpy turns 0-d results into scalars, which the C++ kernels refuse
    return np.asarray(np.abs(a.astype(np.float64))) if _float(a) else a


def _call(n, B, arrays):
    ctx = _Ctx()
    with np.errstate(all="ignore"):
        out = n.call_forward(B, list(arrays), ctx)
    outs = out if type(out) is tuple else (out,)
    return [np.asarray(o) for o in outs] + [np.asarray(getattr(ctx, k)) for k in n.ctx_outputs]


def _elementwise(n, B, xs, es, outs) -> list:
    y = outs[0]
    shape = y.shape
    e_out = np.zeros(shape)
    x64 = [a.astype(np.float64) if _float(a) else a for a in xs]
    base = np.asarray(_call(n, B, x64)[0], np.float64) if any(
        _float(a) and np.any(e) for a, e in zip(xs, es)) else None
    with np.errstate(all="ignore"):
        for i, (a, e) in enumerate(zip(xs, es)):
            if not np.any(e):
                continue
            if not _float(a):  # an uncertain mask or index: the result is uncertain there
                e_out = e_out + np.where(np.broadcast_to(e, shape) > 0, np.inf, 0.0)
                continue
            worst = np.zeros(shape)
            for s in (1.0, -1.0):
                moved = list(x64)
                moved[i] = np.asarray(x64[i] + s * e)
                d = np.abs(np.asarray(_call(n, B, moved)[0], np.float64) - base)
                worst = np.maximum(worst, np.where(np.isnan(d), np.inf, d))
            e_out = e_out + worst
        if y.dtype.kind != "f":  # a compare or a cast to int: flips are not small errors
            e_out = np.where(e_out > 0, np.inf, 0.0)
        else:
            c = TRANSCENDENTAL_ULP if n.fn.cost >= 16 or n.fn.vector_kernel else 2
            scale = np.abs(y.astype(np.float64))
            if n.fn.__name__ in _CANCELLING and _float(xs[0]):
                # x / 2 * (1 + erf(...)): erf's few ulp of 1 survive the cancellation in
                # 1 + erf for x < 0, so the error scales with |x| / 2, not with |y|
                scale = np.maximum(scale, 0.5 * np.abs(xs[0].astype(np.float64)))
            r = c * _eps(y.dtype) * scale
            # an op that is never fused runs eager's kernel: it may differ only when its
            # inputs do
            e_out = e_out + (r if n.fn.c_expr is not None else np.where(e_out > 0, r, 0.0))
    return [e_out]


def _linear(n, B, xs, es, outs) -> list:
    ins = [e if _float(a) else a for a, e in zip(xs, es)]
    eo = _call(n, B, ins)
    mag = _call(n, B, [_abs64(a) for a in xs])
    fin = sum(a.size for a in xs if _float(a))
    res = []
    for y, e, m in zip(outs, eo, mag):
        if y.dtype.kind != "f":
            res.append(np.zeros(y.shape))
            continue
        k = fin // max(y.size, 1) + 1
        e = np.asarray(e, np.float64)
        with np.errstate(all="ignore"):
            res.append(e + np.where(e > 0, k * _eps(y.dtype) * np.asarray(m, np.float64), 0.0))
    return res


def _matmul(n, B, xs, es, outs) -> list:
    a, b = xs
    ea, eb = es
    aa, ab = _abs64(a), _abs64(b)
    with np.errstate(all="ignore"):
        e = (_call(n, B, [aa, np.asarray(eb, np.float64)])[0]
             + _call(n, B, [np.asarray(ea, np.float64), ab])[0]
             + _call(n, B, [np.asarray(ea, np.float64), np.asarray(eb, np.float64)])[0])
        k = a.shape[-1] + 1
        e = e + np.where(e > 0, k * _eps(outs[0].dtype) * _call(n, B, [aa, ab])[0], 0.0)
    return [e]


def _max(n, B, xs, es, outs) -> list:
    e = _call(n, B, [np.asarray(es[0], np.float64)] + list(xs[1:]))
    res = [np.asarray(e[0], np.float64)]
    for y in outs[1:]:  # indices: which element is the max may change
        res.append(np.where(np.broadcast_to(res[0], y.shape) > 0, np.inf, 0.0)
                   if y.shape == res[0].shape else np.full(y.shape, np.inf))
    return res


def _elementwise_op(n) -> bool:
    return len(n.outputs) == 1 and n.kernel is None and (
        n.fn.c_expr is not None or n.fn.__module__ in _ELEMENTWISE_MODULES)


def _node_errors(n, B, xs, es, outs) -> list:
    if _elementwise_op(n):
        return _elementwise(n, B, xs, es, outs)
    if not any(np.any(e) for e in es):
        return [np.zeros(o.shape) for o in outs]
    if n.fn in _LINEAR:
        return _linear(n, B, xs, es, outs)
    if n.fn is L.Matmul:
        return _matmul(n, B, xs, es, outs)
    if n.fn in _MAX:
        return _max(n, B, xs, es, outs)
    raise NoRule(f"no error-propagation rule for {n.op} with perturbed inputs")


def run_graph(graph, B, args: list, arg_vals: list) -> dict:
    """Values and error bounds of every value of `graph`: id -> (array, E)."""
    env = {v.id: (a, e) for v, (a, e) in zip(arg_vals, args)}
    for v in graph.leaves():
        if v.id not in env:
            env[v.id] = (np.asarray(v.data), np.zeros(np.shape(v.data)))
    for n in graph.nodes:
        xs = [env[v.id][0] for v in n.inputs]
        es = [env[v.id][1] for v in n.inputs]
        outs = _call(n, B, xs)
        for v, a, e in zip(n.outputs, outs, _node_errors(n, B, xs, es, outs)):
            # (np.array, not ascontiguousarray: that makes a 0-d array 1-d)
            env[v.id] = (a, np.array(np.broadcast_to(np.asarray(e, np.float64), np.shape(a)),
                                     order="C"))
    return env


def bound(c, arrays: list, out_grads: list) -> tuple[list, list]:
    """(E per function output, E per gradient of `c.wrt_index`'s entries, None where no
    gradient) for compiled graph `c` (fusion off) called on `arrays` (inputs then params)
    with output gradients `out_grads` (one per entry of c.diff_outputs, or None)."""
    B = c.backend
    fg = c.fwd_graph
    env = run_graph(fg, B, [(a, np.zeros(np.shape(a))) for a in arrays], fg.inputs + fg.params)
    out_e = [env[v.id][1] for v in fg.outputs[:c.n_out]]
    saved = fg.outputs[len(fg.outputs) - c.n_saved:] if c.n_saved else []
    grads_e: list = [None] * len(c.wrt_has_grad)
    if c.bwd_graph is None:
        return out_e, grads_e
    bg = c.bwd_graph
    for k, g in enumerate(out_grads):
        if g is None:
            continue
        gs = [g if j == k else np.zeros_like(g2 if g2 is not None else g)
              for j, g2 in enumerate(out_grads)]
        args = [env[v.id] for v in saved] + [(a, np.zeros(np.shape(a))) for a in gs]
        benv = run_graph(bg, B, args, list(bg.inputs) + list(bg.grads))
        res = iter(bg.outputs)
        for w, has in enumerate(c.wrt_has_grad):
            if has:
                a, e = benv[next(res).id]
                prev = grads_e[w]
                grads_e[w] = e if prev is None else prev + e + np.where(
                    prev + e > 0, _eps(a.dtype) * np.abs(a.astype(np.float64)), 0.0)
    return out_e, grads_e
