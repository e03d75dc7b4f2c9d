"""Op metadata lives on the op: every Function declares what the jit, ONNX export and the
profiler read (see `Function`), the declarations are well formed and true, and no table
keyed by op name or class is left in those modules."""
from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pathlib

import numpy as np
import pytest

import tinyfw
import tinyfw.jit
import tinyfw.nn  # noqa: F401 - defines no ops today, imported so that any it adds are seen
from tinyfw.autograd.function import Function
from tests.helpers import npy

ROOT = pathlib.Path(tinyfw.__file__).parent


def _subclasses(c: type):
    for s in c.__subclasses__():
        yield s
        yield from _subclasses(s)


def _ops() -> list:
    """Every Function subclass defined in tinyfw's op modules."""
    ops = {c for c in _subclasses(Function) if c.__module__.startswith("tinyfw.ops")}
    return sorted(ops, key=lambda c: (c.__module__, c.__qualname__))


OPS = _ops()
ELEMENTWISE = [c for c in OPS if c.__module__ == "tinyfw.ops.elementwise"]


def _arity(op: type, attrs=()) -> int:
    """Number of array inputs of the op's forward (variadic ones counted once)."""
    params = list(inspect.signature(op.forward).parameters.values())[2:]
    # (a parameter with a default is a closure value of a generated class, not an input)
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                               p.VAR_POSITIONAL)
               and p.name not in attrs and p.default is p.empty)


def test_the_walk_finds_the_op_families():
    names = {c.__name__ for c in OPS}
    for expected in ("Add", "Where", "Gelu", "Cast", "Matmul", "Sum", "View", "Cat", "Softmax",
                     "Norm", "Conv2d", "MaxPool2dBackward"):
        assert expected in names
    assert len(ELEMENTWISE) >= 40


@pytest.mark.parametrize("op", OPS, ids=lambda c: c.__name__)
def test_declarations_are_well_formed(op):
    assert op.c_expr is None or callable(op.c_expr)
    if op.c_expr is not None:
        assert 0 <= op.c_type_input < _arity(op)
    assert isinstance(op.cost, int) and op.cost >= 1
    assert isinstance(op.fresh_output, bool) and isinstance(op.epilogue_producer, bool)
    # an epilogue overwrites the producer's output: it must be a buffer of its own
    assert not op.epilogue_producer or op.fresh_output
    assert not (op.is_view and op.fresh_output)
    if op.unit is not None or op.commutative:
        assert op.unit is not None and _arity(op) == 2
    assert op.onnx is None or isinstance(op.onnx, str) or callable(op.onnx)
    assert isinstance(op.vector_kernel, bool)
    shapes = [(2, 3, 4, 5)] * max(_arity(op), 2)
    n = op.flops(shapes, [(2, 3, 4, 5)], {})
    assert isinstance(n, int) and n >= 0
    if op.is_view:
        assert n == 0, "a view does no arithmetic"


def test_every_elementwise_op_decides_about_fusion():
    """An elementwise op states its C expression, or None on purpose (its own class
    body says so), so that a new op cannot silently stay out of the fused kernels."""
    undecided = [c.__name__ for c in ELEMENTWISE if "c_expr" not in vars(c)]
    assert not undecided, f"elementwise ops without a c_expr declaration: {undecided}"


def test_every_other_op_states_its_flops():
    """The default FLOP rule (one per output element) fits elementwise ops only; every
    other op declares its own (``no_flops`` for views and copies)."""
    missing = [c.__name__ for c in OPS if c not in ELEMENTWISE and "flops" not in vars(c)]
    assert not missing, f"ops without a flops rule: {missing}"


def test_every_op_declares_its_autocast_policy():
    """Each op's own class body says what autocast does to it (tinyfw/amp), None on
    purpose included, so that a new op cannot silently skip the mixed-precision policy."""
    undecided = [c.__name__ for c in OPS if "autocast" not in vars(c)]
    assert not undecided, f"ops without an autocast declaration: {undecided}"
    bad = [(c.__name__, c.autocast) for c in OPS
           if c.autocast not in (None, "lower", "float32", "promote")]
    assert not bad, f"unknown autocast policies: {bad}"
    # the policy's facts: products run low, their backward kernels as they are called
    assert {c.__name__ for c in OPS if c.autocast == "lower"} == {"Matmul", "Conv2d", "Conv3d",
                                                                  "ScaledDotProductAttention"}
    assert all(c.autocast is None for c in OPS if c.__name__.endswith("Backward"))


def test_onnx_names_are_operators_of_the_exported_opset():
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    for op in OPS:
        if isinstance(op.onnx, str):
            assert onnx.defs.has(op.onnx), f"{op.__name__}: {op.onnx} is not an ONNX operator"
            assert onnx.defs.get_schema(op.onnx, 17).since_version <= 17


# -- the declarations are true -----------------------------------------------------------------
# sample attributes of the fusable ops that take some (the tests' own knowledge)
C_ATTRS = {"LeakyRelu": [{"negative_slope": 0.1}],
           "Gelu": [{"approximate": "none"}, {"approximate": "tanh"}],
           "Clamp": [{"lo": -0.5, "hi": 0.7}, {"lo": None, "hi": 0.3}, {"lo": -0.2, "hi": None}],
           "Cast": [{"dtype": tinyfw.float32}, {"dtype": tinyfw.float64},
                    {"dtype": tinyfw.bool}]}
# GELU's fused formula x/2 * (1 + erf(x/sqrt 2)) cancels for negative x, where the result
# is tiny: its error is bounded in ulps of x, not of the result
ERROR_IN_ULPS_OF_X = {"Gelu"}


def _kernel_inputs(dtype):
    special = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1e-30, 3.0, -3.0, 20.0, -20.0, 100.0, -100.0,
               np.inf, -np.inf, np.nan]
    rng = np.random.default_rng(0)
    x = np.concatenate([special, rng.standard_normal(3000) * 4,
                        np.linspace(-10, 10, 2001)]).astype(dtype)
    y = np.roll(x, 7)
    y[:len(special)] = 1.5  # the specials meet an ordinary second operand too
    m = rng.random(x.size) < 0.5
    return x, y, m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_expressions_compute_what_the_forward_computes(dtype):
    """One generated kernel holds every op that declares a C expression (one output
    each); each output is compared with the op's own forward on the same inputs: the
    simple ops bit for bit, divisions and square roots within 1 ulp, transcendental
    functions within 4 ulp (the kernels' float32 exp flushes results below 2^-125 to
    0, documented in jit/kernels.py)."""
    from tinyfw.dispatch import get_backend
    from tinyfw.jit.ir import Node, Value, _Ctx
    from tinyfw.jit.kernels import FusedKernel

    x, y, m = _kernel_inputs(dtype)
    ids = itertools.count()
    vx, vy, vm = (Value(next(ids), a.shape, a.dtype, "input") for a in (x, y, m))
    arrays = {vx.id: x, vy.id: y, vm.id: m}
    B = get_backend()
    nodes, wants = [], []
    for op in (c for c in OPS if c.c_expr is not None):
        for attrs in C_ATTRS.get(op.__name__, [{}]):
            ins = [vm, vx, vy] if op.c_type_input == 1 else [vx, vy][:_arity(op, attrs)]
            try:
                with np.errstate(all="ignore"):
                    want = np.asarray(op.forward(_Ctx(), B, *[arrays[v.id] for v in ins],
                                                 **attrs))
            except TypeError as exc:
                pytest.fail(f"{op.__name__}: its forward takes attributes: add samples of "
                            f"them to C_ATTRS ({exc})")
            out = Value(next(ids), want.shape, want.dtype)
            nodes.append(Node(op.__name__, op, ins, attrs, [out]))
            wants.append(want)
    kern = FusedKernel(nodes, [vx, vy, vm], [n.outputs[0] for n in nodes], x.shape)
    if not kern.compiled:
        pytest.skip(f"no C compiler for the jit kernels ({getattr(kern, 'error', '')})")
    for n, got, want in zip(nodes, kern(x, y, m), wants):
        what = f"{n.op}{n.attrs or ''} in {np.dtype(dtype).name}"
        assert got.dtype == want.dtype, what
        if want.dtype.kind != "f":
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, f"{what}: at x={x[bad[:4]]}: {got[bad[:4]]} vs {want[bad[:4]]}"
            continue
        assert np.array_equal(np.isnan(got), np.isnan(want)), what
        fin = np.isfinite(want)
        assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)]), what
        g, w = got[fin].astype(np.float64), want[fin].astype(np.float64)
        tiny = want.dtype == np.float32
        if tiny:  # flushed exp: both below 2^-125 counts as agreement
            small = (np.abs(w) < 2.0 ** -125) & (np.abs(g) < 2.0 ** -125)
            g, w = g[~small], w[~small]
        scale = np.abs(w)
        if n.op in ERROR_IN_ULPS_OF_X:
            xs = x[fin][~small] if tiny else x[fin]
            scale = np.maximum(scale, np.abs(xs.astype(np.float64)))
        ulps = np.abs(g - w) / np.spacing(scale.astype(want.dtype)).astype(np.float64)
        bound = 0 if n.fn.cost == 1 else 1 if n.fn.cost < 16 else 4
        assert ulps.max(initial=0) <= bound, f"{what}: {ulps.max()} ulp > {bound}"


def _onnx_roundtrip(fn, args, tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed (pip install onnxruntime)")
    path = str(tmp_path / "op.onnx")
    tinyfw.onnx.export(fn, args, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {f"input_{i}": npy(a) for i, a in enumerate(args)})
    with tinyfw.no_grad():
        want = npy(fn(*args))
    return got, want


_BOOL_ONNX = {"And", "Or", "Xor", "Not"}  # ONNX operators defined on bool tensors only


@pytest.mark.parametrize("op", [c for c in ELEMENTWISE if isinstance(c.onnx, str)],
                         ids=lambda c: c.__name__)
def test_elementwise_onnx_names_translate_the_op(op, tmp_path):
    """An elementwise op naming an ONNX operator exports to it: the exported model run
    by onnxruntime gives the op's own results."""
    rng = np.random.default_rng(1)
    k = _arity(op)
    if op.onnx in _BOOL_ONNX:
        args = tuple(tinyfw.tensor(rng.random((3, 5)) < 0.5) for _ in range(k))
    elif op.c_type_input == 1:  # where(cond, a, b)
        args = (tinyfw.tensor(rng.random((3, 5)) < 0.5),
                tinyfw.randn(3, 5), tinyfw.randn(3, 5))
    else:  # positive: every op's domain, pow's included
        args = tuple(tinyfw.tensor((rng.random((3, 5)) * 2 + 0.25).astype(np.float32))
                     for _ in range(k))
    got, want = _onnx_roundtrip(lambda *a: op.apply(*a), args, tmp_path)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_an_op_without_translation_is_named(tmp_path):
    with pytest.raises(NotImplementedError, match="Atan2 has no ONNX translation"):
        tinyfw.onnx.export(lambda a: tinyfw.atan2(a, a), (tinyfw.randn(3),),
                           str(tmp_path / "m.onnx"))


# -- no tables left ----------------------------------------------------------------------------
# rewrite rules between named ops are patterns, not per-op metadata: allowed, by file
PATTERNS = {("jit/passes/simplify.py", "_RESHAPES")}


def _containers_naming_ops(path: pathlib.Path, env: dict, names: set) -> list:
    """(line, what) of every dict / set / list / tuple literal in the source file `path`
    whose keys or elements are op classes (``X`` or ``mod.X``, resolved in the module's
    globals `env`) or op class names as strings; `what` is the name it is assigned to."""
    tree = ast.parse(path.read_text())
    assigned = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            call_args = node.value.args if isinstance(node.value, ast.Call) else []
            for v in [node.value] + list(call_args):
                assigned[id(v)] = node.targets[0].id

    def resolve(e):
        if isinstance(e, ast.Name):
            return env.get(e.id)
        if isinstance(e, ast.Attribute):
            return getattr(resolve(e.value), e.attr, None)
        return None

    def is_op(e) -> bool:
        if isinstance(e, ast.Constant):
            return isinstance(e.value, str) and e.value in names
        obj = resolve(e)
        return isinstance(obj, type) and issubclass(obj, Function)

    found = []
    for node in ast.walk(tree):
        elts = (node.keys if isinstance(node, ast.Dict) else node.elts
                if isinstance(node, (ast.Set, ast.List, ast.Tuple)) else [])
        if any(e is not None and is_op(e) for e in elts):
            found.append((node.lineno, assigned.get(id(node), ast.unparse(node)[:60])))
    return sorted(found)


def test_no_table_keyed_by_op_in_jit_onnx_profiler():
    names = {c.__name__ for c in _subclasses(Function)}
    files = sorted((ROOT / "jit").rglob("*.py")) + [ROOT / "onnx.py", ROOT / "profiler.py"]
    tables = []
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        module = importlib.import_module("tinyfw." + rel[:-3].replace("/", ".")
                                         .removesuffix(".__init__"))
        tables += [f"{rel}:{line}: {what}"
                   for line, what in _containers_naming_ops(f, vars(module), names)
                   if (rel, what) not in PATTERNS]
    assert not tables, "op metadata belongs on the Function:\n" + "\n".join(tables)


def test_the_table_check_finds_a_table(tmp_path):
    """The check above is not vacuous: it sees the kinds of tables it exists to forbid."""
    from tinyfw.ops import elementwise, linalg

    src = tmp_path / "t.py"
    src.write_text('A = {E.Add: 1}\nB = frozenset({"Matmul"})\ndef f(n):\n'
                   '    return n.fn in (E.Exp, E.Log)\nC = {"time": 1, "x": (list, Any)}\n'
                   'D = [Matmul]\n')
    env = {"E": elementwise, "Matmul": linalg.Matmul, "Any": object}
    found = _containers_naming_ops(src, env, {"Add", "Matmul", "Exp", "Log", "Any"})
    assert [w for _, w in found] == ["A", "B", "(E.Exp, E.Log)", "D"]
