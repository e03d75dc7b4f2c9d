"""Each graph pass on graphs built for it, including graphs where it must not fire."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import jit
from tinyfw.dispatch import get_backend
from tinyfw.jit import executor
from tinyfw.jit.compiler import DEFAULT_PASSES, trace_graph
from tinyfw.jit.passes import (const_fold, cse, dce, fuse_elementwise, fuse_epilogue,
                               memory_plan, simplify)


# the CPU-only passes' products (generated C kernels, numpy arena buffers): CPU graphs
pytestmark = pytest.mark.usefixtures("on_the_cpu")


def graph_of(fn, *args):
    with tinyfw.no_grad():
        return trace_graph(fn, args, {}).graph


def ops(g):
    return [n.op for n in g.nodes]


def run_graph(g, *args):
    return executor.build(g, get_backend())(*[a._data for a in args])


def test_dce_removes_dead_and_keeps_live():
    def f(x):
        _unused = (x * 3).exp()
        return x + 1

    g = graph_of(f, tinyfw.randn(3))
    assert dce.run(g)["removed"] == 2 and ops(g) == ["Add"]
    g = graph_of(lambda x: (x * 3).exp(), tinyfw.randn(3))
    assert dce.run(g)["removed"] == 0


def test_cse_merges_duplicates_only():
    def f(x):
        return x.exp() + x.exp()

    g = graph_of(f, tinyfw.randn(3))
    assert cse.run(g)["removed"] == 1
    dce.run(g)
    assert ops(g) == ["Exp", "Add"]

    def h(x):  # same op, different attributes: must stay two nodes
        return x.sum(0) + x.sum(1)

    g = graph_of(h, tinyfw.randn(3, 3))
    assert cse.run(g)["removed"] == 0
    x = tinyfw.randn(3, 3)
    np.testing.assert_allclose(run_graph(g, x)[0], h(x)._data, rtol=1e-6)


def test_const_fold_folds_constants_not_inputs():
    c = tinyfw.tensor([1.0, 2.0, 3.0])

    def f(x):
        return x * (c.exp() + 1)

    g = graph_of(f, tinyfw.randn(3))
    assert const_fold.run(g, get_backend())["folded"] == 2
    dce.run(g)
    assert ops(g) == ["Mul"]
    x = tinyfw.randn(3)
    np.testing.assert_allclose(run_graph(g, x)[0], f(x)._data, rtol=1e-6)
    g = graph_of(lambda x: x.exp() + 1, tinyfw.randn(3))
    assert const_fold.run(g, get_backend())["folded"] == 0


def test_const_fold_leaves_live_tensors_alone():
    w = tinyfw.randn(3, requires_grad=True)  # a parameter: read on every call
    g = graph_of(lambda x: x * w.exp(), tinyfw.randn(3))
    assert const_fold.run(g, get_backend())["folded"] == 0


def test_simplify_identities():
    def f(x):
        return ((x * 1.0 + -0.0) / 1.0 - 0.0).relu()

    g = graph_of(f, tinyfw.randn(4))
    assert simplify.run(g)["identity"] == 4
    dce.run(g)
    assert ops(g) == ["Relu"]


def test_simplify_keeps_adding_positive_zero():
    # -0.0 + 0.0 is +0.0, and so is -0.0 - (-0.0): neither is an identity on floats
    for f in (lambda x: x + 0.0, lambda x: 0.0 + x, lambda x: x - (-0.0), lambda x: x + 0):
        g = graph_of(f, tinyfw.randn(4))
        assert simplify.run(g)["identity"] == 0
    g = graph_of(lambda x: x + 0, tinyfw.tensor(np.arange(3)))  # integers: no signed zero
    assert simplify.run(g)["identity"] == 1


def test_simplify_does_not_drop_broadcasting_or_promoting_identities():
    ones = tinyfw.ones(2, 1)
    g = graph_of(lambda x: x * ones, tinyfw.randn(3))       # (3,) * (2, 1) -> (2, 3)
    assert simplify.run(g)["identity"] == 0
    g = graph_of(lambda x: x + tinyfw.full((3,), -0.0, dtype=tinyfw.float64), tinyfw.randn(3))
    simplify.run(g)
    dce.run(g)
    assert ops(g) == ["Cast"]  # float32 + float64 zeros: the promotion (a cast) remains
    assert g.outputs[0].dtype == np.float64
    g = graph_of(lambda x: x * 2.0, tinyfw.randn(3))
    assert simplify.run(g)["identity"] == 0


def test_simplify_double_transpose_and_reshape_chain():
    def f(x):
        return x.t().t().reshape(6).reshape(3, 2).reshape(2, 3) + 1

    g = graph_of(f, tinyfw.randn(2, 3))
    st = simplify.run(g)
    dce.run(g)
    assert st["permute"] == 1 and st["reshape"] >= 2
    assert ops(g) == ["Add"]
    x = tinyfw.randn(2, 3)
    np.testing.assert_allclose(run_graph(g, x)[0], f(x)._data)

    def h(x):  # a real permutation survives as one node
        return x.permute(1, 2, 0).permute(1, 0, 2) * 2

    g = graph_of(h, tinyfw.randn(2, 3, 4))
    simplify.run(g)
    dce.run(g)
    assert ops(g) == ["Permute", "Mul"]
    x = tinyfw.randn(2, 3, 4)
    np.testing.assert_allclose(run_graph(g, x)[0], h(x)._data)


def test_fuse_elementwise_chain_and_boundaries():
    b = tinyfw.randn(8)

    def f(x):
        y = (x + b).tanh() * 2
        return y.sum(1), y.exp() - 1  # y feeds a reduction: it must be materialised

    # float64: eager's hand-vectorised tanh/exp are float32 only, so every op may fuse
    # (in float32 they stay eager: test_fuse_keeps_vector_kernels_eager_in_float32)
    b = b.double()
    g = graph_of(f, tinyfw.randn(4, 8, dtype=tinyfw.float64))
    st = fuse_elementwise.run(g)
    assert st["fused_groups"] == 1
    (fused,) = [n for n in g.nodes if n.kernel is not None]
    # one kernel, two outputs: y (for the sum) and exp(y) - 1; tanh/mul stay in registers
    assert len(fused.kernel.nodes) == 5 and len(fused.outputs) == 2
    assert st["bytes_saved"] == 3 * 4 * 8 * 8
    x = tinyfw.randn(4, 8, dtype=tinyfw.float64)
    out = run_graph(g, x)
    want = f(x)
    for a, w in zip(out, want):
        np.testing.assert_allclose(a, w._data, rtol=1e-6, atol=1e-6)


def test_fuse_elementwise_does_not_fuse_across_shapes_or_non_elementwise():
    def f(x):
        return x.exp().sum(0).relu()  # exp | sum | relu: nothing to fuse

    g = graph_of(f, tinyfw.randn(3, 4))
    assert fuse_elementwise.run(g)["fused_groups"] == 0
    g = graph_of(lambda x: x.to(tinyfw.int64) + 1, tinyfw.randn(3))  # integer ops
    assert fuse_elementwise.run(g)["fused_groups"] == 0


def test_fuse_elementwise_avoids_cycles():
    def f(x):
        a = x.exp()
        s = a.sum(1, keepdim=True)   # outside the group, depends on a
        return a * s + a             # must not pull `a` and the Mul into one kernel before s

    g = graph_of(f, tinyfw.randn(3, 4))
    fuse_elementwise.run(g)
    x = tinyfw.randn(3, 4)
    np.testing.assert_allclose(run_graph(g, x)[0], f(x)._data, rtol=1e-6)


def test_fuse_epilogue_fires_on_matmul_bias_activation_only_when_safe():
    w, b = tinyfw.randn(5, 6), tinyfw.randn(6)
    g = graph_of(lambda x: (x @ w + b).relu(), tinyfw.randn(4, 5))
    fuse_elementwise.run(g)
    assert fuse_epilogue.run(g, get_backend())["epilogues"] == 1
    assert len(g.nodes) == 1
    x = tinyfw.randn(4, 5)
    np.testing.assert_allclose(run_graph(g, x)[0], (x @ w + b).relu()._data, rtol=1e-5)

    def two_uses(x):  # the product is needed twice: it may not be overwritten
        m = x @ w
        return (m + b).relu(), m

    g = graph_of(two_uses, tinyfw.randn(4, 5))
    fuse_elementwise.run(g)
    assert fuse_epilogue.run(g, get_backend())["epilogues"] == 0


def test_memory_plan_reuses_buffers_and_reports_peak():
    def f(x):
        for _ in range(4):
            x = (x * 2 + 1).tanh().sum(1, keepdim=True) + x
        return x

    g = graph_of(f, tinyfw.randn(64, 64))
    fuse_elementwise.run(g)
    st = memory_plan.run(g)
    assert st["peak_bytes"] < st["intermediate_bytes"]
    assert st["reused"] >= 1 and st["arena_slots"] >= 2
    x = tinyfw.randn(64, 64)
    run = executor.build(g, get_backend())
    for _ in range(2):  # replays reuse the arena and stay correct
        np.testing.assert_allclose(run(x._data)[0], f(x)._data, rtol=1e-5, atol=1e-5)


def test_memory_plan_never_places_outputs_in_the_arena():
    g = graph_of(lambda x: (x * 2).exp(), tinyfw.randn(4))
    fuse_elementwise.run(g)
    memory_plan.run(g)
    assert g.arena == {}
    traced = jit.trace(lambda x: (x * 2).exp(), (tinyfw.randn(4),))
    a = traced(tinyfw.ones(4))
    b = traced(tinyfw.zeros(4))
    assert not np.shares_memory(a._data, b._data)


def _compiled(fn, *args):
    tf = jit.trace(fn, args)
    return tf, tf.get_compiled(args)


def _stat(c, name, graph="joint"):
    return next(s for s in c.stats if s["pass"] == name and s["graph"] == graph)


def test_shrink_saved_keeps_relu_mask_not_activation():
    tinyfw.manual_seed(0)
    x = tinyfw.randn(16, 32, requires_grad=True)
    w = tinyfw.randn(32, 32, requires_grad=True)

    def f(x):
        return (x @ w).relu() * 3  # relu's backward needs only out > 0

    tf, c = _compiled(f, x)
    saved_dtypes = [np.dtype(v.dtype) for v in c.fwd_graph.outputs[c.n_out:]]
    assert np.dtype(np.bool_) in saved_dtypes
    assert _stat(c, "shrink_saved")["bytes_saved"] == 16 * 32 * 3  # 4-byte floats -> bools
    tf(x).sum().backward()
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    f(x).sum().backward()
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_shrink_saved_does_not_fire_when_the_activation_is_needed_anyway():
    x = tinyfw.randn(8, 8, requires_grad=True)
    w = tinyfw.randn(8, 8, requires_grad=True)
    # the matmul's weight gradient reads relu's output itself
    _, c = _compiled(lambda x: (x @ w).relu() @ w, x)
    assert _stat(c, "shrink_saved")["bytes_saved"] == 0
    # backward of y * y reads y itself: saving a mask as well would only add bytes
    _, c = _compiled(lambda x: (lambda y: y * y)(x.relu()), x)
    assert _stat(c, "shrink_saved")["bytes_saved"] == 0
    assert np.dtype(np.bool_) not in [np.dtype(v.dtype) for v in c.fwd_graph.outputs[c.n_out:]]
    # a relu output that is also returned is held by the caller: nothing to gain
    _, c = _compiled(lambda x: x.relu(), x)
    assert _stat(c, "shrink_saved")["bytes_saved"] == 0
    # off when the pass is not requested
    tf = jit.trace(lambda x: (x * 2).relu() * 3, (x,),
                   passes=tuple(p for p in DEFAULT_PASSES if p != "shrink_saved"))
    c = tf.get_compiled((x,))
    assert not any(s["pass"] == "shrink_saved" and s["bytes_saved"] for s in c.stats)


def test_memory_plan_inplace_over_dying_fresh_inputs_only():
    tinyfw.manual_seed(1)
    x = tinyfw.randn(2, 3, 8, 8, requires_grad=True)

    def f(x):
        # the pooling backward's fresh output dies in relu's fused mask-multiply
        return tinyfw.nn.functional.max_pool2d((x * 2).relu(), 2) * 3

    tf, c = _compiled(f, x)
    st = _stat(c, "memory_plan", "backward")
    assert st["inplace"] >= 1
    args = {v.id for v in c.bwd_graph.inputs + c.bwd_graph.grads}
    for a in c.bwd_graph.arena.values():
        if type(a) is tuple:  # never over a value saved by the forward (retain_graph)
            assert a[1].id not in args and a[1].producer is not None
    y = tf(x)
    y.sum().backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.sum().backward()  # the second replay must see intact saved values
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-5, atol=1e-6)
    x.grad = None
    f(x).sum().backward()
    np.testing.assert_allclose(g1, x.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_memory_plan_no_inplace_when_input_read_later():
    def f(x):
        y = x.exp()                 # fresh, read by the fused kernel and again afterwards
        return (y * 2 + 1).tanh() + y.sum(1, keepdim=True), y

    # float64: the whole Mul+Add+Tanh+Add chain fuses (in float32 tanh stays eager and
    # the last Add may then rightly write over tanh's dying output)
    g = graph_of(f, tinyfw.randn(8, 8, dtype=tinyfw.float64))
    fuse_elementwise.run(g)
    st = memory_plan.run(g)
    assert st["inplace"] == 0


def test_fuse_elementwise_lone_node_becomes_kernel_to_write_in_place():
    tinyfw.manual_seed(2)
    x = tinyfw.randn(2, 3, 8, 8, requires_grad=True)
    w = tinyfw.randn(4, 3, 3, 3, requires_grad=True)
    F = tinyfw.nn.functional

    def f(x):
        # relu's backward is one Where(mask, 0, g) over the pooling backward's fresh output
        return F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2)

    tf, c = _compiled(f, x)
    where = [n for n in c.bwd_graph.nodes if n.kernel is not None and n.op == "Fused[Where]"]
    assert len(where) == 1
    assert type(c.bwd_graph.arena.get(where[0].outputs[0].id)) is tuple  # in place
    tf(x).sum().backward()
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    f(x).sum().backward()
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_fuse_elementwise_lone_node_stays_an_op_without_a_buffer_to_take():
    def read_later(x):  # y is read again after the Where: it cannot be overwritten
        y = x.exp()
        return tinyfw.where(x > 0, y, 0.0) + y.sum()

    def view_input(x):  # the Where's input is a view: never overwritten
        y = x.exp().reshape(8, 8)
        return tinyfw.where(y > 0, y, 0.0)

    def input_only(x):  # only graph inputs: nothing freshly allocated to take
        return tinyfw.where(x > 0, x, 0.0)

    for f in (read_later, view_input, input_only):
        g = graph_of(f, tinyfw.randn(64))
        n_before = len(g.nodes)
        fuse_elementwise.run(g)
        lone = [n for n in g.nodes if n.kernel is not None and len(n.kernel.nodes) == 1]
        assert lone == [], (f.__name__, [n.op for n in g.nodes], n_before)
        x = tinyfw.randn(64)
        np.testing.assert_allclose(run_graph(g, x)[0], f(x)._data, rtol=1e-6)


def test_executor_frees_owned_arguments_at_last_use():
    import tracemalloc

    def f(x, y):
        return x.sum(), y.exp()  # x is dead before exp allocates

    g = graph_of(f, tinyfw.randn(256, 256), tinyfw.randn(256, 256))
    run = executor.build(g, get_backend())
    y = np.ones((256, 256), np.float32)
    expected = [np.float32(256 * 256), np.exp(y)]
    tracemalloc.start()
    try:
        args = [np.ones((256, 256), np.float32), y]  # x is referenced by the list only
        base = tracemalloc.get_traced_memory()[0]
        out = run.owned(args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert args == []  # the call took the arguments
    assert peak < 256 * 256 * 4 // 2  # x's 256 KiB were freed before exp's 256 KiB
    np.testing.assert_allclose(out[0], expected[0])
    np.testing.assert_allclose(out[1], expected[1], rtol=1e-6)
    # the plain call leaves the caller's arrays alone
    a = np.ones((256, 256), np.float32)
    run(a, y)
    assert a.sum() == 256 * 256


def test_traced_backward_frees_saved_values_unless_retained():
    import tracemalloc

    tinyfw.manual_seed(3)
    x = tinyfw.randn(256, 256, requires_grad=True)
    w1 = tinyfw.randn(256, 256, requires_grad=True)
    w2 = tinyfw.randn(256, 256, requires_grad=True)

    def f(x):
        return ((x @ w1).tanh() @ w2).tanh().sum()

    tf = jit.trace(f, (x,))

    from tinyfw.backend import cpu

    def step_peak(**kw):
        # tracemalloc sees a free only of memory allocated while it traced: start it
        # before the forward, which allocates the saved activations.  The eager kernels'
        # outputs (tanh stays eager in float32) come from the C++ caching allocator,
        # invisible to tracemalloc: off meanwhile, they are numpy allocations
        pooled = getattr(cpu, "_C", None) is not None and cpu.memory_stats()["enabled"]
        if pooled:
            cpu.set_caching_allocator(enabled=False)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            y = tf(x)
            tracemalloc.reset_peak()
            y.backward(**kw)
            return y, tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
            if pooled:
                cpu.set_caching_allocator(enabled=True)

    y, kept = step_peak(retain_graph=True)
    assert y.grad_fn.next[0].saved is not None  # the call's node, behind the output's
    g1 = x.grad.numpy().copy()
    x.grad = w1.grad = w2.grad = None  # no accumulation buffers in the second peak
    y, freed = step_peak()
    assert y.grad_fn.next[0].saved is None
    # both tanh outputs (256 KiB each) die inside the backward instead of after it
    assert freed <= kept - 256 * 256 * 4, (freed, kept)
    np.testing.assert_allclose(x.grad.numpy(), g1, rtol=1e-6)
    with __import__("pytest").raises(RuntimeError, match="second time"):
        y.backward()
    x.grad = None
    f(x).backward()
    np.testing.assert_allclose(g1, x.grad.numpy(), rtol=1e-4, atol=1e-4)


def _step_peak(step) -> int:
    import tracemalloc

    from tinyfw.backend import cpu

    # numpy reports its allocations to tracemalloc; the caching allocator's blocks are
    # not numpy's, so it is off while the step's own memory is measured
    pooled = cpu._C is not None and cpu.memory_stats()["enabled"]
    if pooled:
        cpu.set_caching_allocator(enabled=False)
    step()  # warm: first-call allocations are not per-step costs
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        if pooled:
            cpu.set_caching_allocator(enabled=True)


def _peaks(model, x, y) -> tuple[int, int]:
    """Peak intermediate bytes of an eager and a traced training step (bench_jit's
    definition: numpy bytes above the step's start, plus the traced graph's arena)."""
    F = tinyfw.nn.functional
    traced = jit.trace(model, (x,))

    def make(net):
        def step():
            for p in model.parameters():
                p.grad = None
            F.cross_entropy(net(x), y).backward()
        return step

    arena = sum(s.get("arena_bytes", 0) for c in traced.cache.values() for s in c.stats
                if s["pass"] == "memory_plan")
    return _step_peak(make(model)), _step_peak(make(traced)) + arena


def test_traced_training_step_peak_memory_below_eager():
    nn = tinyfw.nn
    tinyfw.manual_seed(5)
    x, y = tinyfw.randn(8, 1, 16, 16), tinyfw.randint(0, 10, (8,))
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    eager, traced = _peaks(cnn, x, y)
    # relu masks instead of activations, pooling gradients overwritten in place, saved
    # values freed as the backward goes: well below eager (issue 5 asks >= 30%).  The
    # numpy reference kernels' own temporaries (im2col, pooling windows) dominate both
    # modes alike, so the margin is asserted with the compiled kernels
    from tinyfw.backend import cpu

    compiled = get_backend() is cpu and cpu._C is not None
    assert traced <= (0.7 if compiled else 1.0) * eager, (traced, eager)
    x2 = tinyfw.randn(32, 64)
    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    eager, traced = _peaks(mlp, x2, tinyfw.randint(0, 10, (32,)))
    assert traced <= eager, (traced, eager)  # never worse than eager's allocator
