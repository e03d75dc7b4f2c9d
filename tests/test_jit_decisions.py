"""Traced mode never replaces a hand-vectorised eager kernel by a generated one: the rule
(kernels.eager_reason, docs/jit.md) is applied as documented, explain states every choice
with its reason, and the traced results agree with eager's.  Speed itself lives in
benchmarks/bench_jit_sweep.py (no timed tests)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
from tinyfw import jit
from tests.helpers import explain_text
from tinyfw.jit.kernels import eager_reason, fusable, vector_kernel
from tinyfw.jit.passes import fuse_elementwise

F = tinyfw.nn.functional


@pytest.fixture(autouse=True)
def _on_the_cpu():
    """Fusion is a CPU-only pass (compiler.CPU_ONLY_PASSES): inspect CPU graphs."""
    with tinyfw.device("cpu"):
        yield


def _graph_before_fusion(fn, x):
    """The forward graph as traced, before any CPU pass (the ops one by one)."""
    tf = jit.trace(fn, (x,), passes=("dce",))
    return tf.graph(x)[0]


def _compiled_nodes(fn, x):
    """(ops kept as graph nodes, ops inside generated kernels) of fn's traced forward."""
    fwd, _ = jit.trace(fn, (x,)).graph(x)
    plain = [_key(n) for n in fwd.nodes if n.kernel is None]
    fused = [_key(m) for n in fwd.nodes if n.kernel is not None
             for m in getattr(getattr(n.kernel, "epi", n.kernel), "nodes", [])]
    return plain, fused


def _key(n) -> str:
    """'Gelu(approximate=tanh)': the op and its attributes (the decision may read them)."""
    return n.op + ("(" + ", ".join(f"{k}={v}" for k, v in sorted(n.attrs.items())) + ")"
                   if n.attrs else "")


def _many_ops(x):
    """A chain through every elementwise family: vectorised-eager ops between cheap ones."""
    y = (x * 0.5 + 0.25).exp() * 0.5
    y = (y + 2).log() - 0.5  # (+ 1 would be rewritten into log1p: jit/rewrites_builtin.py)
    y = y.tanh() * 2 + y.sigmoid()
    y = F.silu(y) * 0.5 + F.gelu(y) + F.gelu(y, approximate="tanh") * 0.25
    return y.erf() * 3 + y.sin() - y.abs()


@pytest.mark.parametrize("dtype", [tinyfw.float32, tinyfw.float64])
def test_every_fusable_op_is_fused_unless_its_eager_kernel_is_vectorised(dtype):
    """Each op of the chain is inside a generated kernel exactly when it is fusable and
    the rule does not keep it eager: its float32 eager kernel is vectorised (the op's
    declaration, read through kernels.vector_kernel)."""
    x = tinyfw.randn(16, 32, dtype=dtype)
    with tinyfw.no_grad():
        before = _graph_before_fusion(_many_ops, x)
        expect_eager = sorted(_key(n) for n in before.nodes
                              if fusable(n) and eager_reason(n) is not None)
        plain, fused = _compiled_nodes(_many_ops, x)
    if dtype == tinyfw.float32:
        assert {"Exp", "Log", "Tanh", "Sigmoid", "Silu"} <= set(expect_eager)
        assert "Gelu(approximate=tanh)" in expect_eager
    else:
        assert expect_eager == []  # eager's vector math is float32 only
    kept = sorted(k for k in plain if k in {_key(n) for n in before.nodes if fusable(n)})
    # kept eager: the rule's ops, plus any fusable op left alone between them
    assert set(expect_eager) <= set(kept)
    assert not set(expect_eager) & set(fused)
    for n in before.nodes:
        if fusable(n) and vector_kernel(n) and dtype == tinyfw.float32:
            assert _key(n) not in fused, _key(n)
        elif fusable(n) and _key(n) not in plain:
            assert _key(n) in fused, _key(n)


def test_gelu_is_kept_eager_in_both_forms():
    """Both GELU forms run csrc's vector math in eager (erf included), so neither goes
    into a generated kernel in float32; the decision reads each node's declaration."""
    x = tinyfw.randn(8, 8)
    with tinyfw.no_grad():
        g = _graph_before_fusion(lambda t: F.gelu(t) + F.gelu(t, approximate="tanh"), x)
    gelus = {n.attrs["approximate"]: n for n in g.nodes if n.op == "Gelu"}
    assert sorted(gelus) == ["none", "tanh"]
    for form, n in gelus.items():
        assert vector_kernel(n) and eager_reason(n) is not None, form


def test_cheap_ops_around_a_kept_op_still_fuse():
    def f(x):
        return (x * 2 + 1).tanh() * 3 - 1

    x = tinyfw.randn(64, 64)
    with tinyfw.no_grad():
        plain, fused = _compiled_nodes(f, x)
        text = explain_text(f, x)
    assert "Tanh" in plain and "Tanh" not in fused
    assert sorted(fused) == ["Add", "Mul", "Mul", "Sub"]
    assert "kept eager: Tanh float32[64, 64]: its float32 eager kernel is hand-vectorised" \
        in text
    assert "fused: Mul+Add float32[64, 64]" in text and "fused: Mul+Sub float32[64, 64]" in text
    with tinyfw.no_grad():
        got = jit.trace(f, (x,))(x).numpy()
        want = f(x).numpy()
    # the fused kernels may contract x * 2 + 1 into one FMA: one rounding fewer
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=2e-7)


def test_lone_op_is_kept_eager_and_said_so():
    x = tinyfw.randn(4, 8)
    with tinyfw.no_grad():
        text = explain_text(lambda t: (t * 3).sum(1), x)
    assert "kept eager: Mul float32[4, 8]: alone, a generated kernel would save no memory " \
           "pass" in text


def test_every_decision_line_states_a_choice_and_a_reason():
    x = tinyfw.randn(32, 16, requires_grad=True)
    text = explain_text(_many_ops, x)
    lines = [ln.strip() for ln in text.splitlines() if ln.startswith("      ")]
    fe = [ln for ln in lines if ln.startswith(("fused: ", "kept eager: "))]
    assert fe and any(ln.startswith("kept eager: ") for ln in fe)
    for ln in fe:
        choice, _, rest = ln.partition(": ")
        what, _, why = rest.rpartition(": ")
        assert choice in ("fused", "kept eager") and what and why, ln
    st = [s for s in jit.trace(_many_ops, (x,)).cache.values()][0].stats
    for s in st:
        if s["pass"] == "fuse_elementwise":
            n_kept = sum(d.startswith("kept eager") for d in s["decisions"])
            n_fused = sum(d.startswith("fused") for d in s["decisions"])
            assert n_fused == s["fused_groups"] and n_kept >= 1


def _block(d):
    tinyfw.manual_seed(0)
    lin, ln = tinyfw.nn.Linear(d, d), tinyfw.nn.LayerNorm(d)

    def block(x):
        return tinyfw.tanh(ln(F.gelu(lin(x)) * 0.5 + x)) * 2 + 1

    return block, [lin.weight, lin.bias, ln.weight, ln.bias]


@pytest.mark.parametrize("rows", [1, 16, 257])
def test_issue_block_traced_agrees_with_eager(rows):
    """The benchmark's block (issue 10): its layer norm and tanh stay eager ops, forward
    and backward, and the traced values and gradients agree with eager's."""
    block, params = _block(64)
    tinyfw.manual_seed(rows)
    x = tinyfw.randn(rows, 64, requires_grad=True)
    g = tinyfw.randn(rows, 64)
    tf = jit.trace(block, (x,))
    fwd, bwd = tf.graph(x)
    plain = [n.op for n in fwd.nodes if n.kernel is None]
    assert "Norm" in plain and "Tanh" in plain
    assert "NormBackward" in [n.op for n in bwd.nodes if n.kernel is None]
    y = tf(x)
    y.backward(g)
    got = [y.detach().numpy().copy(), x.grad.numpy().copy()] + \
        [p.grad.numpy().copy() for p in params]
    x.grad = None
    for p in params:
        p.grad = None
    ye = block(x)
    ye.backward(g)
    want = [ye.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in params]
    # generated erf/exp (a few ulp) and FMA contraction against eager's kernels; the
    # column sums of the weight gradients add `rows` such terms
    tol = 1e-5 * math.sqrt(rows)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    with tinyfw.no_grad():
        np.testing.assert_allclose(jit.trace(block, (x,))(x).numpy(), block(x).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_decisions_are_recorded_by_the_pass_itself():
    """fuse_elementwise.run reports its decisions (what explain prints)."""
    from tinyfw.jit.compiler import trace_graph

    with tinyfw.no_grad():
        g = trace_graph(lambda t: (t + 1).exp() * 2, (tinyfw.randn(8, 8),), {}).graph
    st = fuse_elementwise.run(g)
    d = st["decisions"]
    assert d[0].startswith("kept eager: Exp float32[8, 8]: its float32 eager kernel is")
    # Add alone before exp reads the graph input: nothing to save, kept eager; Mul alone
    # after it may write over exp's dying output: a kernel that allocates nothing
    assert any(x.startswith("kept eager: Add float32[8, 8]: alone") for x in d)
    assert any(x.startswith("fused: Mul float32[8, 8]") and "written over a dying input" in x
               for x in d)
    assert st["fused_groups"] == 1
