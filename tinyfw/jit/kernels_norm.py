"""A generated layer-norm kernel for traced graphs (float32 rows of a fixed width).

Eager's C++ layer norm accumulates each row's sum and squared deviations in double, one
element after the other: IEEE addition is not associative, so the compiler may not split
the sum across vector lanes, and the loop runs at one add's latency per element.  The
generated kernel asks for exactly that split (``#pragma omp simd reduction``), still
accumulating in double, so the statistics are vectorised; the row width, eps and which of
weight/bias exist are compile-time constants.  Same outputs as eager's op: y, and the
float32 mean and rstd (1 / sqrt(var + eps), biased variance) that the backward reads.
"""
from __future__ import annotations

import os

import numpy as np

from .kernels import _load


# elements from which the row loops run on all OpenMP threads: vectorised, a (256, 512)
# layer norm takes ~60 us on one core, too little to pay for a fork/join on a busy machine
PARALLEL_ROWS = 1 << 18


class _GeneratedRowKernel:
    """What both layer-norm kernels share: compiling their C source, and their name."""

    m: int
    n: int

    def _source(self) -> str:
        raise NotImplementedError

    def _compile(self) -> None:
        self.source = self._source()
        self._ffi = self._fn = None
        self.error = ""
        if os.environ.get("TINYFW_JIT_CC", "1") != "0":
            try:
                self._ffi, self._fn = _load(self.source)
            except Exception as exc:  # noqa: BLE001 - no compiler: the node is not replaced
                self.error = f"{type(exc).__name__}: {exc}"

    @property
    def compiled(self) -> bool:
        """True when the generated C is in use."""
        return self._fn is not None

    def describe(self) -> str:
        """'LayerNorm float32[256, 512]' (or LayerNormBackward ...) for explain()."""
        return f"{type(self).__name__.removesuffix('Kernel')} float32[{self.m}, {self.n}]"


class LayerNormKernel(_GeneratedRowKernel):
    """y, mean, rstd = layer_norm(x (M, N) float32, [weight (N,)], [bias (N,)], eps)."""

    accepts_out = False
    fresh = True  # its outputs are new arrays: a later kernel may write over them

    def __init__(self, m: int, n: int, eps: float, has_w: bool, has_b: bool,
                 n_outputs: int) -> None:
        self.m, self.n, self.eps, self.has_w, self.has_b = m, n, eps, has_w, has_b
        self.n_outputs = n_outputs  # 1: y only (no backward reads the statistics)
        self._compile()

    def _source(self) -> str:
        m, n = self.m, self.n
        params = ["const float* x"] + (["const float* w"] if self.has_w else []) \
            + (["const float* b"] if self.has_b else []) \
            + ["float* y", "float* mean", "float* rstd"]
        aff = "t"
        if self.has_w:
            aff = f"{aff} * w[j]"
        if self.has_b:
            aff = f"{aff} + b[j]"
        par = "#pragma omp parallel for schedule(static)" if m * n >= PARALLEL_ROWS else ""
        return f"""#include <math.h>
void kern({', '.join(params)}) {{
{par}
for (long i = 0; i < {m}L; i++) {{
  const float* r = x + i * {n}L;
  double s = 0;
  #pragma omp simd reduction(+:s)
  for (long j = 0; j < {n}L; j++) s += r[j];
  const float mu = (float)(s / {float(n)!r});
  double v = 0;
  #pragma omp simd reduction(+:v)
  for (long j = 0; j < {n}L; j++) {{ const double d = (double)(r[j] - mu); v += d * d; }}
  const float rs = 1.0f / sqrtf((float)(v / {float(n)!r}) + (float){float(self.eps)!r});
  mean[i] = mu;
  rstd[i] = rs;
  float* o = y + i * {n}L;
  #pragma omp simd
  for (long j = 0; j < {n}L; j++) {{ const float t = (r[j] - mu) * rs; o[j] = {aff}; }}
}}
}}
"""

    def __call__(self, *arrays, out=None) -> tuple:
        fb = self._ffi.from_buffer
        args = [fb(a if a.flags.c_contiguous else np.ascontiguousarray(a)) for a in arrays]
        y = np.empty((self.m, self.n), np.float32)
        mean = np.empty(self.m, np.float32)
        rstd = np.empty(self.m, np.float32)
        self._fn(*args, fb(y), fb(mean), fb(rstd))
        return (y, mean, rstd)[:self.n_outputs]


class LayerNormBackwardKernel(_GeneratedRowKernel):
    """gx, gw, gb = layer_norm_backward(g, x, [weight], mean, rstd) for float32 (M, N),
    eager's formula: with xh = (x - mean) * rstd and h = g * weight,
    gx = rstd * (h - mean(h) - xh * mean(h * xh)); gw, gb are column sums of g * xh and g
    (per-thread partial sums over a fixed row split, added in thread order), empty arrays
    without a weight.  Row sums accumulate in double, vectorised as in the forward."""

    accepts_out = False
    fresh = True

    def __init__(self, m: int, n: int, has_w: bool) -> None:
        self.m, self.n, self.has_w = m, n, has_w
        # the partial-sum buffer is allocated by the caller, for at most this many threads
        self.max_threads = max(1, os.cpu_count() or 1)
        self._compile()

    def _source(self) -> str:
        m, n, hw = self.m, self.n, self.has_w
        params = ["const float* g", "const float* x"] + (["const float* w"] if hw else []) \
            + ["const float* mean", "const float* rstd", "float* gx", "double* part"]
        h = "g_[j] * w[j]" if hw else "g_[j]"
        acc = ("\n      acc[j] += (double)g_[j] * (double)xh; acc[%dL + j] += g_[j];" % n
               if hw else "")
        decl = (f"  double* acc = part + 2L * {n}L * omp_get_thread_num();" if hw
                else "  (void)part;")
        nt = (f"int nt = omp_get_max_threads(); if (nt > {self.max_threads}) "
              f"nt = {self.max_threads};" if m * n >= PARALLEL_ROWS else "int nt = 1;")
        return f"""#include <math.h>
#include <omp.h>
void kern({', '.join(params)}) {{
{nt}
#pragma omp parallel num_threads(nt)
{{
{decl}
#pragma omp for schedule(static)
  for (long i = 0; i < {m}L; i++) {{
    const float* r = x + i * {n}L;
    const float* g_ = g + i * {n}L;
    const float mu = mean[i], rs = rstd[i];
    double sh = 0, shx = 0;
    #pragma omp simd reduction(+:sh, shx)
    for (long j = 0; j < {n}L; j++) {{
      const float xh = (r[j] - mu) * rs;
      const float h = {h};
      sh += h;
      shx += (double)h * (double)xh;{acc}
    }}
    const float mh = (float)(sh / {float(n)!r}), mhx = (float)(shx / {float(n)!r});
    float* o = gx + i * {n}L;
    #pragma omp simd
    for (long j = 0; j < {n}L; j++) {{
      const float xh = (r[j] - mu) * rs;
      const float h = {h};
      o[j] = rs * (h - mh - xh * mhx);
    }}
  }}
}}
}}
"""

    def __call__(self, *arrays, out=None) -> tuple:
        fb = self._ffi.from_buffer
        args = [fb(a if a.flags.c_contiguous else np.ascontiguousarray(a)) for a in arrays]
        gx = np.empty((self.m, self.n), np.float32)
        part = np.zeros(2 * self.n * self.max_threads if self.has_w else 1, np.float64)
        self._fn(*args, fb(gx), fb(part))
        if not self.has_w:
            return gx, np.zeros(0, np.float32), np.zeros(0, np.float32)
        part = part.reshape(self.max_threads, 2, self.n).sum(0)  # unused threads add 0
        return gx, part[0].astype(np.float32), part[1].astype(np.float32)


def replace_layer_norms(graph) -> list:
    """Swap each float32 layer-norm node of `graph` for a generated kernel (same inputs,
    same output values); returns the descriptions of the kernels placed."""
    from ..ops.nn import Norm, NormBackward
    from .ir import Node

    f32 = np.dtype(np.float32)
    placed = []
    for k, n in enumerate(graph.nodes):
        if n.kernel is not None or n.attrs.get("kind") != "layer":
            continue
        if n.fn is Norm and not n.n_attr_inputs \
                and n.ctx_outputs in ((), ("mean", "rstd")):
            x = n.inputs[0]
            make = lambda: LayerNormKernel(  # noqa: E731
                x.shape[0], x.shape[1], n.attrs["eps"], n.attrs["has_w"],
                n.attrs["has_b"], len(n.outputs))
        elif n.fn is NormBackward and not n.n_attr_inputs and len(n.outputs) == 3 \
                and len(n.inputs) in (4, 5):
            x = n.inputs[1]
            make = lambda: LayerNormBackwardKernel(  # noqa: E731
                x.shape[0], x.shape[1], len(n.inputs) == 5)
        else:
            continue
        if len(x.shape) != 2 or 0 in x.shape \
                or any(np.dtype(v.dtype) != f32 for v in n.inputs + n.outputs[:1]):
            continue
        if n.fn is NormBackward and tuple(n.inputs[0].shape) != tuple(x.shape):
            continue  # g must be x's (M, N)
        kern = make()
        if not kern.compiled:
            continue
        name = "LayerNorm" if n.fn is Norm else "LayerNormBackward"
        fused = Node(name, None, list(n.inputs), {}, list(n.outputs), kern)
        for v in fused.outputs:
            v.producer = fused
        graph.nodes[k] = fused
        placed.append(kern.describe())
    return placed
