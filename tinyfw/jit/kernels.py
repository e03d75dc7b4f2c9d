"""Fused elementwise kernels: generated C, compiled at run time with cffi, cached.

A group of elementwise nodes with one iteration shape becomes one C function: nested
loops over the (collapsed) output shape, each input read at its broadcast offset, the
whole expression evaluated in registers (each op's part is its Function's ``c_expr``),
each group output stored once.  Shapes are fixed per traced signature, so sizes and
strides are compile-time constants; inputs are made C-contiguous first (a no-op for
almost all of them).  Kernels are cached in memory
and on disk (``$TINYFW_JIT_CACHE``, default ``~/.cache/tinyfw/jit``) by a hash of their
source, so a kernel is compiled once per machine (0.1–0.3 s).

Why generated C (option b of the design): measured on this machine, a numpy expression
interpreter over cache-sized chunks still pays one numpy call per op per chunk and
could not beat the C++ eager kernels on small tensors; a compiled loop does the whole
group in one pass with no temporaries.  Without a C compiler (or with
``TINYFW_JIT_CC=0``) a group runs its original ops one by one (correct, not faster).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import tempfile

import numpy as np

from ..backend import cpu as _cpu

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
          np.dtype(np.bool_): "unsigned char"}
FUSABLE_DTYPES = frozenset(_CTYPE)


# Vectorisable float32 exp and erf for the generated kernels.  glibc's expf/erff are
# scalar calls (erff ~13 ns per element here), which keeps GCC from vectorising a fused
# loop: these are branch-free (selects only), so the whole loop becomes AVX2 code.
# exp: Cody-Waite reduction x = n ln2 + r (ln2 in two parts), degree-7 polynomial for
# e^r, 2^(n-1) built in the exponent bits; results below 2^-125 flush to 0, above
# FLT_MAX give inf, NaN propagates.  erf: the odd Maclaurin series (8 terms, truncation
# < 2e-8 absolute) for |x| < 0.75, else 1 - erfc with erfc from the Chebyshev-fitted
# form t*exp(-x^2 + P(t)), t = 1/(1 + |x|/2), relative error < 1.2e-7 (Numerical
# Recipes' erfcc).  Both are within a few float32 ulp of the correctly rounded values
# (tests/test_jit_kernels.py checks them against float64 references).  An op's C
# expression (its Function's ``c_expr``) reaches them through ops/_opmeta.cfun.
_PRELUDE = r"""#include <math.h>
#include <stdint.h>
#include <string.h>
static inline float tf_expf(float x) {
    float xc = x < -87.0f ? -87.0f : (x > 88.72283f ? 88.72283f : x);
    const float magic = 12582912.0f;
    const float t = xc * 1.44269504088896341f + magic;
    const float n = t - magic;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t ti;
    memcpy(&ti, &t, 4);
    const int32_t bits = (ti - 0x4B400000 + 126) << 23;
    float sc;
    memcpy(&sc, &bits, 4);
    float res = p * sc * 2.0f;
    res = x < -87.0f ? 0.0f : res;
    res = x > 88.72283f ? INFINITY : res;
    return x != x ? x : res;
}
static inline float tf_erff(float x) {
    const float a = fabsf(x);
    const float z = x * x;
    const float small = x * (1.1283791670955126f + z * (-0.37612638903183754f + z * (0.11283791670955126f + z * (-0.026866170645131252f + z * (0.005223977625442188f + z * (-0.0008548327023450852f + z * (0.00012055332981789664f + z * (-1.492565035840625e-05f))))))));
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float q = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f
        + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f
        + t * (-0.82215223f + t * 0.17087277f))))))));
    const float erfc = t * tf_expf(q - z);
    const float big = copysignf(1.0f - erfc, x);
    return a < 0.75f ? small : big;
}
"""


# elements x cost above which a kernel's outer loop runs on all OpenMP threads: eager's
# kernels split from 32768 elements (csrc/core.h kGrain), which for a plain add (cost 4)
# is 2^17.  (At 2^21 a fused Mul+Add over 4096 x 64 ran on one thread between two
# parallel eager kernels: traced was 0.81x eager at 2 threads, now 1.42x.)
PARALLEL_WORK = 1 << 17


def fusable(node) -> bool:
    """True when the node can be part of a generated elementwise kernel: its op declares
    a C expression (``Function.c_expr``), it has one output, and every value is a
    non-empty float32/float64/bool array."""
    if getattr(node.fn, "c_expr", None) is None or node.kernel is not None \
            or len(node.outputs) != 1:
        return False
    vals = list(node.inputs) + node.outputs
    if any(np.dtype(v.dtype) not in FUSABLE_DTYPES for v in vals):
        return False
    if any(int(np.prod(v.shape, dtype=np.int64)) == 0 for v in vals):
        return False
    return True


def vector_kernel(node) -> bool:
    """The op's ``vector_kernel`` declaration (Function, ops/_opmeta.py): its float32
    eager kernel is hand-vectorised."""
    return node.fn.vector_kernel


def eager_reason(node) -> str | None:
    """Why a fusable node stays an eager op, or None when it may join a generated kernel.

    The decision rule (docs/jit.md, "When traced mode keeps eager's kernel"): in a float32
    graph, an op whose eager kernel is hand-vectorised (``vector_kernel``: csrc's vector
    math) is never put into a generated kernel.  Fusing it would save one write and one
    read of its output (~0.25 ns per element in cache, Sapphire Rapids) but computes the
    function with what GCC makes of its C expression: exp/erf at about eager's speed,
    tanh/log as scalar libm calls (~15 ns per element against ~1) that also keep the
    rest of the fused loop from vectorising.  The cheap ops around it still fuse.  Other
    dtypes: eager's vector math is float32 only, so there is nothing to lose."""
    if node.kernel is not None or not vector_kernel(node):
        return None
    floats = [np.dtype(v.dtype) for v in list(node.inputs) + node.outputs
              if np.dtype(v.dtype).kind == "f"]
    if not floats or any(d != np.float32 for d in floats):
        return None
    return "its float32 eager kernel is hand-vectorised (Function.vector_kernel)"


def _bstrides(shape: tuple, out_shape: tuple) -> list:
    """Element strides of a C-contiguous `shape` broadcast to `out_shape` (0 = repeated)."""
    nd = len(out_shape)
    full = (1,) * (nd - len(shape)) + tuple(shape)
    st, acc = [0] * nd, 1
    for d in range(nd - 1, -1, -1):
        st[d] = 0 if full[d] == 1 else acc
        acc *= full[d]
    return st


def _collapse(shape: tuple, strides: list[list]) -> tuple[list, list[list]]:
    """Merge adjacent dims that every operand walks contiguously (fewer, longer loops)."""
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    if not dims:
        return [1], [[0] for _ in strides]
    sz = [shape[dims[0]]]
    st = [[s[dims[0]]] for s in strides]
    for d in dims[1:]:
        if all(s[-1] == s2[d] * shape[d] for s, s2 in zip(st, strides)):
            sz[-1] *= shape[d]
            for s, s2 in zip(st, strides):
                s[-1] = s2[d]
        else:
            sz.append(shape[d])
            for s, s2 in zip(st, strides):
                s.append(s2[d])
    return sz, st


class FusedKernel:
    """One generated kernel for a group of elementwise nodes (see module doc)."""

    accepts_out = True

    def __init__(self, nodes: list, inputs: list, outputs: list, shape: tuple) -> None:
        self.nodes, self.inputs, self.outputs, self.shape = nodes, inputs, outputs, shape
        self.out_dtypes = [np.dtype(v.dtype) for v in outputs]
        self.source = self._source()
        self._fn = None
        self._ffi = None
        if os.environ.get("TINYFW_JIT_CC", "1") != "0":
            try:
                self._ffi, self._fn = _load(self.source)
            except Exception as exc:  # noqa: BLE001 - no compiler: run the ops one by one
                self.error = f"{type(exc).__name__}: {exc}"

    @property
    def compiled(self) -> bool:
        """True when the generated C is in use (else the ops run one by one)."""
        return self._fn is not None

    def describe(self) -> str:
        """'Add+Mul+Relu float32[64, 128]: 3 in, 1 out' for explain()."""
        ops = "+".join(n.op for n in self.nodes)
        return (f"{ops} {self.out_dtypes[0].name}{list(self.shape)}: {len(self.inputs)} in, "
                f"{len(self.outputs)} out" + ("" if self.compiled else " (not compiled)"))

    def _source(self) -> str:
        names: dict = {}
        ctype = {}
        body = []
        shape = tuple(self.shape)
        strides = [_bstrides(tuple(v.shape), shape) for v in self.inputs]
        strides.append(_bstrides(shape, shape))
        sz, st = _collapse(shape, strides)
        idx = [f"i{d}" for d in range(len(sz))]

        def off(s):
            terms = [f"{i}*{k}L" if k != 1 else i for i, k in zip(idx, s) if k != 0]
            return " + ".join(terms) or "0"

        for j, v in enumerate(self.inputs):
            t = _CTYPE[np.dtype(v.dtype)]
            names[v.id], ctype[v.id] = f"x{j}", t
            body.append(f"const {t} x{j} = in{j}[{off(st[j])}];")
        for n in self.nodes:
            args = [names[v.id] for v in n.inputs]
            t = _CTYPE[np.dtype(n.inputs[n.fn.c_type_input].dtype)] if n.inputs else "float"
            expr = n.fn.c_expr(args, t, n.attrs)
            out = n.outputs[0]
            ot = _CTYPE[np.dtype(out.dtype)]
            names[out.id] = f"t{out.id}"
            body.append(f"const {ot} t{out.id} = ({ot})({expr});")
        o = off(st[-1])
        for j, v in enumerate(self.outputs):
            body.append(f"out{j}[{o}] = {names[v.id]};")
        params = [f"const {_CTYPE[np.dtype(v.dtype)]}* in{j}"
                  for j, v in enumerate(self.inputs)]
        params += [f"{_CTYPE[np.dtype(v.dtype)]}* out{j}"
                   for j, v in enumerate(self.outputs)]
        total = int(np.prod(sz))
        lines = [_PRELUDE, f"void kern({', '.join(params)}) {{"]
        # split across threads only when the loop's work pays for the fork/join (the
        # team, kept spinning through a burst of kernels, is usually awake)
        par = total * self.cost() >= PARALLEL_WORK
        if par:
            # one loop: "parallel for simd" both splits and vectorises it (an ivdep
            # pragma may not sit between "parallel for" and its loop)
            simd = " simd" if len(sz) == 1 else ""
            lines.append(f"#pragma omp parallel for{simd} schedule(static)")
        for d, n in enumerate(sz):
            if d == len(sz) - 1 and not (par and len(sz) == 1):
                # iteration i reads every operand at i and then writes the outputs at i:
                # no loop-carried dependence even when an output buffer IS an input (the
                # epilogue and in-place plans do that), so skip GCC's overlap check, whose
                # failure would fall back to the scalar loop
                lines.append("  " * d + "#pragma GCC ivdep")
            lines.append("  " * d + f"for (long i{d} = 0; i{d} < {n}L; i{d}++)"
                         + (" {" if d == len(sz) - 1 else ""))
        lines += ["  " * len(sz) + s for s in body]
        lines.append("}")
        lines.append("}")
        return "\n".join(lines)

    def cost(self) -> int:
        """Rough work units per element: each op's ``cost`` (1 for a simple op, 4 for a
        division, 16 for a transcendental function) plus one per operand read and store."""
        ops = sum(n.fn.cost for n in self.nodes)
        return ops + len(self.inputs) + len(self.outputs)

    def __call__(self, *arrays, out=None) -> tuple:
        if self._fn is None:
            return self._interpret(arrays)
        fb = self._ffi.from_buffer
        args = []
        for a, v in zip(arrays, self.inputs):
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            args.append(fb(a))
        outs = []
        for j, dt in enumerate(self.out_dtypes):
            o = out[j] if out is not None else None
            if o is None or not (o.flags.c_contiguous and o.flags.writeable):
                # an in-place plan over a strided or read-only buffer: allocate instead
                # (the backend's empty: large blocks from the caching pool, no page faults)
                o = _cpu.empty(self.shape, np.dtype(dt))
            outs.append(o)
            args.append(fb(o))
        self._fn(*args)
        return tuple(outs)

    def _interpret(self, arrays) -> tuple:
        from ..dispatch import get_backend
        from .executor import _Ctx

        B = get_backend()
        env = {v.id: a for v, a in zip(self.inputs, arrays)}
        for n in self.nodes:
            r = n.fn.forward(_Ctx(), B, *[env[v.id] for v in n.inputs], **n.attrs)
            env[n.outputs[0].id] = np.asarray(r)
        return tuple(env[v.id] for v in self.outputs)


_LOADED: dict = {}
_ABI = "tinyfw-jit-kernels-5"  # bump when the calling convention or the flags change


def cache_dir() -> str:
    """Where compiled kernels are kept between processes."""
    d = os.environ.get("TINYFW_JIT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyfw", "jit")
    os.makedirs(d, exist_ok=True)
    return d


def _load(source: str):
    """Compile (or reuse) the module for `source`; returns (ffi, kern)."""
    from ..backend.cpu import isa_cflags

    march = isa_cflags()  # the eager kernels' ISA level: a forced lower one stays lower
    key = hashlib.sha1((_ABI + source + platform.node() + platform.python_version()
                        + " ".join(march)).encode()).hexdigest()[:20]
    if key in _LOADED:
        return _LOADED[key]
    import cffi

    name = f"_tfjit_{key}"
    # void* parameters: the C side's typed pointers accept them, and cffi then takes
    # from_buffer() of any numpy array without a cast per argument
    sig = next(ln for ln in source.split("\n") if ln.startswith("void kern("))
    nargs = sig.count(",") + 1
    decl = f"void kern({', '.join(['void*'] * nargs)});"
    ffi = cffi.FFI()
    ffi.cdef(decl)
    d = cache_dir()
    path = next((os.path.join(d, f) for f in os.listdir(d)
                 if f.startswith(name + ".") and f.endswith(".so")), None)
    if path is None:
        tmp = tempfile.mkdtemp(prefix="tfjit", dir=d)
        try:
            # -ffp-contract=fast: ISO C mode (-std=c99) forbids contracting a * b + c
            # into one FMA, which left the exp/erf polynomials as separate multiplies and
            # adds: with FMA the GELU kernels run ~1.6x faster (and round once per step)
            ffi.set_source(name, source, extra_compile_args=["-O3", *march, "-fopenmp", "-std=c99",
                                                             "-ffp-contract=fast",
                                                             # GCC 12 stops at 256-bit vectors
                                                             # by default; 512 makes the GELU
                                                             # kernel ~1.3x faster on AVX-512
                                                             # (no effect without it)
                                                             "-mprefer-vector-width=512",
                                                             "-fno-math-errno", "-fno-trapping-math"],
                           extra_link_args=["-fopenmp"], libraries=["m"])
            built = ffi.compile(tmpdir=tmp, verbose=False)
            path = os.path.join(d, os.path.basename(built))
            os.replace(built, path)  # atomic: concurrent builders never see half a file
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _LOADED[key] = (mod.ffi, mod.lib.kern)
    return _LOADED[key]
