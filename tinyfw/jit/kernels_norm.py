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


class LayerNormKernel:
    """y, mean, rstd = layer_norm(x (M, N) float32, [weight (N,)], [bias (N,)], eps)."""

    accepts_out = False
    fresh = True  # its outputs are new arrays: a later kernel may write over them

    def __init__(self, m: int, n: int, eps: float, has_w: bool, has_b: bool,
                 n_outputs: int) -> None:
        self.m, self.n, self.eps, self.has_w, self.has_b = m, n, eps, has_w, has_b
        self.n_outputs = n_outputs  # 1: y only (no backward reads the statistics)
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
        """'LayerNorm float32[256, 512]' for explain()."""
        return f"LayerNorm float32[{self.m}, {self.n}]"

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
        par = "#pragma omp parallel for schedule(static)" if m * n > 32768 else ""
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


def replace_layer_norms(graph) -> list:
    """Swap each float32 layer-norm node of `graph` for a generated kernel (same inputs,
    same output values); returns the descriptions of the kernels placed."""
    from ..ops.nn import Norm
    from .ir import Node

    f32 = np.dtype(np.float32)
    placed = []
    for k, n in enumerate(graph.nodes):
        if n.fn is not Norm or n.kernel is not None or n.n_attr_inputs \
                or n.attrs.get("kind") != "layer":
            continue
        x = n.inputs[0]
        if len(x.shape) != 2 or 0 in x.shape or any(np.dtype(v.dtype) != f32
                                                     for v in n.inputs + n.outputs):
            continue
        if n.ctx_outputs not in ((), ("mean", "rstd")):
            continue
        kern = LayerNormKernel(x.shape[0], x.shape[1], n.attrs["eps"], n.attrs["has_w"],
                               n.attrs["has_b"], len(n.outputs))
        if not kern.compiled:
            continue
        fused = Node("LayerNorm", None, list(n.inputs), {}, list(n.outputs), kern)
        for v in fused.outputs:
            v.producer = fused
        graph.nodes[k] = fused
        placed.append(kern.describe())
    return placed
