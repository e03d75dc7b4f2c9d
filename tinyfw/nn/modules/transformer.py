"""Attention: `MultiheadAttention`, `TransformerEncoderLayer`, `TransformerEncoder`."""
from __future__ import annotations

import copy
import math
from typing import Callable

from ... import creation
from ... import dtypes as _dt
from ...ops.linalg import linear
from ...tensor import Tensor
from .. import functional as F
from .. import init
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear, _empty
from .module import Module
from .normalization import LayerNorm


def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """A (sz, sz) float mask, -inf above the diagonal and 0 elsewhere: position i may
    attend to positions <= i (causal attention)."""
    return creation.full((sz, sz), float("-inf"), dtype=dtype or _dt.get_default_dtype(),
                         device=device).triu(1)


def _mask_to_additive(mask: Tensor, dtype, name: str) -> Tensor:
    """A boolean mask (True = may not attend) as 0/-inf; float masks pass through."""
    if mask.dtype is _dt.bool_:
        zeros = creation.zeros(mask.shape, dtype=dtype, device=mask.device)
        return zeros.masked_fill(mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: {name} must be bool or floating point, got "
                        f"{mask.dtype.name}")
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Multi-head scaled dot-product attention (Vaswani et al.), PyTorch's layout:
    packed ``in_proj_weight`` (3E, E) / ``in_proj_bias`` and ``out_proj``.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights or None).
    Inputs are (L, N, E), or (N, L, E) with batch_first, or unbatched (L, E).  Boolean
    masks mark positions that may NOT be attended; float masks are added to the scores.
    attn_mask is (L, S) or (N * num_heads, L, S); key_padding_mask is (N, S).
    need_weights=False runs the fused F.scaled_dot_product_attention (the scores are never
    stored; a query whose keys are all masked out gives 0); need_weights=True computes the
    softmax explicitly to return it (such a query gives NaN there), as PyTorch splits it."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) and num_heads "
                             f"({num_heads}) must be positive")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or \
                (vdim not in (None, embed_dim)):
            raise ValueError("MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim "
                             "different from embed_dim are not supported by tinyfw")
        self.embed_dim = embed_dim
        self.kdim = self.vdim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.in_proj_weight = _empty(3 * embed_dim, embed_dim, dtype=dtype, device=device)
        if bias:
            self.in_proj_bias = _empty(3 * embed_dim, dtype=dtype, device=device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, query: Tensor, key: Tensor, value: Tensor):
        w, b, e = self.in_proj_weight, self.in_proj_bias, self.embed_dim
        if query is key and key is value:
            # self-attention: one matmul for q, k and v
            return linear(query, w, b).chunk(3, dim=-1)
        ws = w.chunk(3, dim=0)
        bs = b.chunk(3, dim=0) if b is not None else (None, None, None)
        return (linear(query, ws[0], bs[0]), linear(key, ws[1], bs[1]),
                linear(value, ws[2], bs[2]))

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """Attend from query to key/value; returns (output, averaged or per-head weights)."""
        e, h, hd = self.embed_dim, self.num_heads, self.head_dim
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query/key/value must all be 3-d (batched) or "
                             f"2-d (unbatched), got {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)}")
        if query.shape[-1] != e or key.shape[-1] != e or value.shape[-1] != e:
            raise ValueError(f"MultiheadAttention: the last dimension of query/key/value must be "
                             f"embed_dim={e}, got {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)}")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            same_kv = key is value
            same_qk = query is key
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        n, lq, _ = query.shape
        s = key.shape[1]
        if key.shape[0] != n or value.shape[0] != n or value.shape[1] != s:
            raise ValueError(f"MultiheadAttention: key {tuple(key.shape)} and value "
                             f"{tuple(value.shape)} must share batch and length (batch-first "
                             f"shapes), query is {tuple(query.shape)}")
        q, k, v = self._project(query, key, value)
        # (N, L, E) -> (N, H, L, hd)
        q = q.reshape(n, lq, h, hd).transpose(1, 2)
        k = k.reshape(n, s, h, hd).transpose(1, 2)
        v = v.reshape(n, s, h, hd).transpose(1, 2)
        am = self._attn_mask(attn_mask, n, lq, s)
        kpm = None
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, s):
                raise ValueError(f"MultiheadAttention: key_padding_mask of shape "
                                 f"{tuple(key_padding_mask.shape)} should be {(n, s)}")
            kpm = _mask_to_additive(key_padding_mask, q.dtype, "key_padding_mask")
            kpm = kpm.reshape(n, 1, 1, s)
        if not need_weights:
            # the fused op (F.scaled_dot_product_attention): the (L, S) scores are never
            # stored; a query whose keys are all masked out gives 0 there, not NaN
            causal = is_causal and attn_mask is None
            if causal and kpm is not None:  # the op takes a mask or is_causal, not both
                am, causal = generate_square_subsequent_mask(lq, q.device, q.dtype), False
            if am is not None and am.dtype is _dt.bool_ and kpm is None:
                mask = am.logical_not()  # True = may not attend here; the op keeps where True
            else:
                mask = None if am is None else _mask_to_additive(am, q.dtype, "attn_mask")
                if kpm is not None:
                    mask = kpm if mask is None else mask + kpm
            attn = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=causal,
                dropout_p=self.dropout if self.training else 0.0, scale=1.0 / math.sqrt(hd))
            return self._finish(attn, None, n, lq, unbatched)
        scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)  # (N, H, L, S)
        if attn_mask is None and is_causal:
            am = generate_square_subsequent_mask(lq, scores.device, scores.dtype)
        if am is not None:
            scores = scores + _mask_to_additive(am, scores.dtype, "attn_mask")
        if kpm is not None:
            scores = scores + kpm
        attn = F.softmax(scores, dim=-1)
        if self.dropout > 0.0 and self.training:
            attn = F.dropout(attn, self.dropout, True)
        weights = attn.mean(dim=1) if average_attn_weights else attn
        return self._finish(attn @ v, weights, n, lq, unbatched)

    def _attn_mask(self, attn_mask: Tensor | None, n: int, lq: int, s: int) -> Tensor | None:
        """attn_mask checked and seen as (L, S) or (N, H, L, S)."""
        if attn_mask is None:
            return None
        h = self.num_heads
        if attn_mask.ndim == 2 and tuple(attn_mask.shape) == (lq, s):
            return attn_mask
        if attn_mask.ndim == 3 and tuple(attn_mask.shape) == (n * h, lq, s):
            return attn_mask.reshape(n, h, lq, s)
        if attn_mask.ndim == 2:
            raise ValueError(f"MultiheadAttention: attn_mask of shape {tuple(attn_mask.shape)} "
                             f"should be {(lq, s)}")
        raise ValueError(f"MultiheadAttention: attn_mask of shape {tuple(attn_mask.shape)} "
                         f"should be {(lq, s)} or {(n * h, lq, s)}")

    def _finish(self, attn_v: Tensor, weights: Tensor | None, n: int, lq: int, unbatched: bool):
        """(N, H, L, hd) heads -> out_proj -> the caller's layout; (output, weights)."""
        out = self.out_proj(attn_v.transpose(1, 2).reshape(n, lq, self.embed_dim))
        if unbatched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        return ""


def _activation(act) -> Callable[[Tensor], Tensor]:
    if callable(act):
        return act
    if act == "relu":
        return F.relu
    if act == "gelu":
        return F.gelu
    raise ValueError(f"TransformerEncoderLayer: activation should be 'relu', 'gelu' or a "
                     f"callable, not {act!r}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual connection
    and LayerNorm — after the residual (post-norm, the default) or before the block
    (``norm_first=True``, pre-norm)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device,
                                            dtype=dtype)
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """One encoder layer over src ((S, N, E), or (N, S, E) with batch_first)."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerEncoder(Module):
    """A stack of `num_layers` copies of `encoder_layer` (each with its own weights),
    followed by an optional final norm."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """Run the layers in order."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x
