"""Issue 16: the decoder side of the Transformer, F.multi_head_attention_forward and the
MultiheadAttention options it brought (kdim/vdim, add_bias_kv, add_zero_attn), each
against PyTorch with the same weights (tests/nn_oracle.py: outputs and every gradient)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import assert_close, requires_torch, torch
from nn_oracle import compare, copy_weights

pytestmark = requires_torch
F64 = "float64"


def _pair(tcls, fcls, *args, **kw):
    tm = tcls(*args, **kw).double().eval()
    fm = fcls(*args, **kw).to(tinyfw.float64).eval()
    return tm, fm


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_matches_torch(norm_first, batch_first):
    tm, fm = _pair(torch.nn.TransformerDecoderLayer, tinyfw.nn.TransformerDecoderLayer, 8, 2,
                   dim_feedforward=16, dropout=0.0, norm_first=norm_first,
                   batch_first=batch_first)
    rng = np.random.default_rng(0)
    tgt = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8))
    mem = rng.standard_normal((3, 4, 8) if batch_first else (4, 3, 8))
    compare(tm, fm, [tgt, mem], dtype=F64)


def test_decoder_layer_masks_match_torch():
    tm, fm = _pair(torch.nn.TransformerDecoderLayer, tinyfw.nn.TransformerDecoderLayer, 8, 2,
                   dim_feedforward=16, dropout=0.0, batch_first=True)
    rng = np.random.default_rng(1)
    tgt, mem = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 4, 8))
    causal = np.triu(np.full((5, 5), -np.inf), 1)
    pad = np.array([[False, False, False, True], [False, True, True, True]])
    compare(tm, fm, [tgt, mem], dtype=F64,
            kwargs_t=dict(tgt_mask=torch.from_numpy(causal),
                          memory_key_padding_mask=torch.from_numpy(pad)),
            kwargs_f=dict(tgt_mask=tinyfw.tensor(causal),
                          memory_key_padding_mask=tinyfw.tensor(pad)))


def test_decoder_stack_and_transformer_match_torch():
    layer_t = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0)
    layer_f = tinyfw.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0)
    tm = torch.nn.TransformerDecoder(layer_t, 2, torch.nn.LayerNorm(8)).double().eval()
    fm = tinyfw.nn.TransformerDecoder(layer_f, 2, tinyfw.nn.LayerNorm(8)).to(tinyfw.float64).eval()
    rng = np.random.default_rng(2)
    compare(tm, fm, [rng.standard_normal((5, 2, 8)), rng.standard_normal((3, 2, 8))], dtype=F64)

    tt, ft = _pair(torch.nn.Transformer, tinyfw.nn.Transformer, d_model=8, nhead=2,
                   num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0)
    assert list(ft.state_dict()) == list(tt.state_dict())
    src, tgt = rng.standard_normal((6, 2, 8)), rng.standard_normal((4, 2, 8))
    mask = tinyfw.nn.Transformer.generate_square_subsequent_mask(4, dtype=tinyfw.float64)
    compare(tt, ft, [src, tgt], dtype=F64,
            kwargs_t=dict(tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
                4, dtype=torch.float64)),
            kwargs_f=dict(tgt_mask=mask))


def test_transformer_init_is_xavier_and_errors_name_the_problem():
    t = tinyfw.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                              dim_feedforward=32)
    w = t.encoder.layers[0].linear1.weight
    bound = (6 / (16 + 32)) ** 0.5  # xavier_uniform_ on a (32, 16) weight
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound
    with pytest.raises(ValueError, match="same batch size"):
        t(tinyfw.randn(5, 2, 16), tinyfw.randn(4, 3, 16))
    with pytest.raises(ValueError, match="d_model=16"):
        t(tinyfw.randn(5, 2, 8), tinyfw.randn(4, 2, 8))


@pytest.mark.parametrize("opts", [dict(kdim=3, vdim=5), dict(add_bias_kv=True),
                                  dict(add_zero_attn=True),
                                  dict(add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=6)],
                         ids=["kdim-vdim", "bias_kv", "zero_attn", "all"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_options_match_torch(opts, need_weights):
    tm, fm = _pair(torch.nn.MultiheadAttention, tinyfw.nn.MultiheadAttention, 8, 2, **opts)
    assert [n for n, _ in fm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    rng = np.random.default_rng(3)
    q = rng.standard_normal((4, 2, 8))
    k = rng.standard_normal((3, 2, opts.get("kdim", 8)))
    v = rng.standard_normal((3, 2, opts.get("vdim", 8)))
    pad = np.array([[False, False, True], [False, True, False]])
    kw_t = dict(need_weights=need_weights, key_padding_mask=torch.from_numpy(pad))
    kw_f = dict(need_weights=need_weights, key_padding_mask=tinyfw.tensor(pad))
    compare(tm, fm, [q, k, v], dtype=F64, kwargs_t=kw_t, kwargs_f=kw_f)


@pytest.mark.parametrize("separate", [False, True])
def test_functional_multi_head_attention_forward_matches_torch(separate):
    tm = torch.nn.MultiheadAttention(8, 2, kdim=4 if separate else None,
                                     vdim=4 if separate else None, add_bias_kv=True).double()
    fm = tinyfw.nn.MultiheadAttention(8, 2, kdim=4 if separate else None,
                                      vdim=4 if separate else None, add_bias_kv=True).to(tinyfw.float64)
    copy_weights(tm, fm)
    rng = np.random.default_rng(4)
    q = rng.standard_normal((5, 3, 8))
    kv = rng.standard_normal((6, 3, 4 if separate else 8))
    mask = np.triu(np.ones((5, 6), bool), 1)

    def run(mod, m, lib, wrap):
        p = dict(mod.named_parameters())
        args = [wrap(q), wrap(kv), wrap(kv), 8, 2, p.get("in_proj_weight"), p["in_proj_bias"],
                p["bias_k"], p["bias_v"], False, 0.0, p["out_proj.weight"], p["out_proj.bias"]]
        kw = dict(attn_mask=wrap(mask), average_attn_weights=False)
        if separate:
            kw.update(use_separate_proj_weight=True, q_proj_weight=p["q_proj_weight"],
                      k_proj_weight=p["k_proj_weight"], v_proj_weight=p["v_proj_weight"])
        return lib.multi_head_attention_forward(*args, **kw)

    out_t, w_t = run(tm, None, torch.nn.functional, torch.from_numpy)
    out_f, w_f = run(fm, None, tinyfw.nn.functional, tinyfw.tensor)
    assert_close(out_f, out_t, F64, msg="output")
    assert_close(w_f, w_t, F64, msg="weights")
    out_t.sum().backward()
    out_f.sum().backward()
    tp = dict(tm.named_parameters())
    for name, p in fm.named_parameters():
        if tp[name].grad is not None:
            assert_close(p.grad, tp[name].grad, F64, msg=f"grad of {name}")


def test_functional_multi_head_attention_forward_errors():
    x = tinyfw.randn(4, 2, 8)
    w, b = tinyfw.randn(24, 8), tinyfw.zeros(24)
    ow = tinyfw.randn(8, 8)
    F = tinyfw.nn.functional
    with pytest.raises(ValueError, match="embed_dim_to_check=6"):
        F.multi_head_attention_forward(x, x, x, 6, 2, w, b, None, None, False, 0.0, ow, None)
    with pytest.raises(ValueError, match="divisible by num_heads 3"):
        F.multi_head_attention_forward(x, x, x, 8, 3, w, b, None, None, False, 0.0, ow, None)
    with pytest.raises(ValueError, match="use_separate_proj_weight"):
        kv = tinyfw.randn(3, 2, 5)
        F.multi_head_attention_forward(x, kv, kv, 8, 2, w, b, None, None, False, 0.0, ow, None)
