"""Scaled dot-product attention as one op: ``softmax(scale * q @ kᵀ + mask) @ v``.

The forward calls the backend primitive ``sdpa_forward`` (fused on the CPU: the L x S
score matrix is never stored) and keeps only q, k, v, the output and the per-row
logsumexp; the backward's ``sdpa_backward`` recomputes the probabilities from them.
Arrays are 4-d (B, H, L, E); the public API with argument checks is
``tinyfw.nn.functional.scaled_dot_product_attention``, which brings other shapes to 4-d.

A row whose keys are all masked out gives 0 (and zero gradients), as PyTorch 2.13
does; see ``backend/ref_attention.py`` for the formulas.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function, GradMode
from ._util import Tensor, _make, apply
from .elementwise import where
from .nn import softmax


def _sdpa_flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
    """Two products (2 L S E and 2 L S Ev per batch-head) and ~5 per score (softmax)."""
    b, h, l, e = in_shapes[0]
    s, ev = in_shapes[1][2], in_shapes[2][3]
    return b * h * l * s * (2 * e + 2 * ev + 5)


def _sdpa_onnx(b, n, ins: list, out: str) -> None:
    """MatMul, Mul, the mask (Where or Add), Softmax, MatMul; fully masked rows are set to
    0 (ONNX's Softmax gives NaN there) so that the graph computes what the op does."""
    a = n.attrs
    dtype = n.outputs[0].dtype
    kt, s = b.tmp(), b.tmp()
    b.add("Transpose", [ins[1]], [kt], perm=[0, 1, 3, 2])
    qk = b.tmp()
    b.add("MatMul", [ins[0], kt], [qk])
    b.add("Mul", [qk, b.scalar(a["scale"], dtype)], [s])
    ninf = b.scalar(float("-inf"), dtype)
    if a["has_mask"]:
        masked = b.tmp()
        if n.inputs[3].dtype == _dt.bool_.np:
            b.add("Where", [ins[3], s, ninf], [masked])
        else:
            b.add("Add", [s, ins[3]], [masked])
        s = masked
    if a["is_causal"]:
        L, S = n.inputs[0].shape[2], n.inputs[1].shape[2]
        keep, causal = b.tmp(), b.tmp()
        b.add("Trilu", [b.full((L, S), True, "bool")], [keep], upper=0)
        b.add("Where", [keep, s, ninf], [causal])
        s = causal
    p, rmax, dead, alive, pz = b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b.add("Softmax", [s], [p], axis=-1)
    b.reduce("ReduceMax", s, rmax, [-1], True)
    b.add("Equal", [rmax, ninf], [dead])
    b.add("Not", [dead], [alive])
    b.add("Where", [alive, p, b.scalar(0.0, dtype)], [pz])
    b.add("MatMul", [pz, ins[2]], [out])


class ScaledDotProductAttention(Function):
    """Inputs (q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev)[, mask (B, H, L, S)]),
    attributes scale, is_causal, has_mask; output (B, H, L, Ev)."""
    autocast = "lower"  # two products: low precision, float32 accumulation (as matmul)

    fresh_output = True
    onnx = staticmethod(_sdpa_onnx)
    flops = staticmethod(_sdpa_flops)
    vector_kernel = True  # eager: a fused, vectorised kernel (csrc/attention.cpp)
    save_inputs = True
    save_output = True

    @staticmethod
    def forward(ctx, B, q, k, v, *mask, scale, is_causal, has_mask):
        out, lse = B.sdpa_forward(q, k, v, mask[0] if has_mask else None, scale, is_causal)
        ctx.lse = lse
        ctx.scale, ctx.is_causal, ctx.has_mask = scale, is_causal, has_mask
        return out

    def backward(self, g):
        ins = self.saved_inputs
        mask = ins[3] if self.has_mask else None
        want_mask = mask is not None and self.next[3] is not None
        if GradMode.enabled or want_mask:
            # create_graph (higher-order gradients) or a float mask that wants its
            # gradient: the same formulas in tinyfw ops, differentiable, L x S stored
            grads = composed_backward(g, *ins[:3], mask, self.scale, self.is_causal)
        else:
            grads = apply(SdpaBackward, (g, *ins[:3], self.output, _make(self.lse))
                          + ((mask,) if mask is not None else ()),
                          {"scale": self.scale, "is_causal": self.is_causal,
                           "has_mask": mask is not None})
        out = [gr if nx is not None else None for gr, nx in zip(grads, self.next)]
        return tuple(out) + ((None,) if self.has_mask and len(out) == 3 else ())


class SdpaBackward(Function):
    """(gq, gk, gv) from inputs (g, q, k, v, out, lse[, mask]) with the fused kernel.
    Only run outside grad mode: a backward that builds a graph (create_graph) takes
    `composed_backward` instead, so this op needs no gradient of its own."""
    autocast = None
    differentiable = False

    fresh_output = True
    flops = staticmethod(lambda i, o, a: _sdpa_flops(i[1:], o, a) * 2)
    vector_kernel = True  # eager: a fused, vectorised kernel (csrc/attention.cpp)

    @staticmethod
    def forward(ctx, B, g, q, k, v, out, lse, *mask, scale, is_causal, has_mask):
        return B.sdpa_backward(g, q, k, v, out, lse, mask[0] if has_mask else None, scale,
                               is_causal)


def attention_scores(q: Tensor, k: Tensor, mask: Tensor | None, scale: float,
                     is_causal: bool) -> Tensor:
    """scale * q @ kᵀ with the mask applied (bool: -inf where False; float: added) and
    the causal mask, in tinyfw ops (the unfused composition)."""
    s = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        s = where(mask, s, float("-inf")) if mask.dtype is _dt.bool_ else s + mask
    if is_causal:
        from ..creation import ones

        keep = ones((s.shape[-2], s.shape[-1]), dtype=_dt.bool_, device=s.device).tril()
        s = where(keep, s, float("-inf"))
    return s


def attention_probs(s: Tensor) -> Tensor:
    """softmax(s) along the last dim with rows that are all -inf set to 0 (not NaN)."""
    alive = s.detach().amax(-1, keepdim=True) > float("-inf")
    return where(alive, softmax(where(alive, s, 0.0), -1), 0.0)


def composed_backward(g, q, k, v, mask, scale: float, is_causal: bool) -> tuple:
    """(gq, gk, gv[, gmask]) of attention in tinyfw ops (differentiable); gmask is the
    gradient of a float mask (of the scores' shape: the op's mask is broadcast)."""
    p = attention_probs(attention_scores(q, k, mask, scale, is_causal))
    gv = p.transpose(-2, -1) @ g
    dp = g @ v.transpose(-2, -1)
    ds = p * (dp - (p * dp).sum(-1, keepdim=True))
    gq = (ds @ k) * scale
    gk = (ds.transpose(-2, -1) @ q) * scale
    if mask is None or mask.dtype is _dt.bool_:
        return gq, gk, gv
    return gq, gk, gv, ds


def sdpa_4d(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float,
            is_causal: bool) -> Tensor:
    """Apply the op to validated 4-d q, k, v and a mask already broadcast to (B, H, L, S)."""
    ins = (q, k, v) if mask is None else (q, k, v, mask)
    return apply(ScaledDotProductAttention, ins, {"scale": float(scale),
                                                  "is_causal": bool(is_causal),
                                                  "has_mask": mask is not None})
