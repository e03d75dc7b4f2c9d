"""Recurrent layers and attention against PyTorch (outputs and all gradients)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn

from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare, copy_weights

pytestmark = requires_torch
RNG = np.random.default_rng(99)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name,kw", [("RNNCell", {}), ("RNNCell", dict(nonlinearity="relu")),
                                     ("LSTMCell", {}), ("GRUCell", {}),
                                     ("GRUCell", dict(bias=False))])
def test_cells(name, kw):
    t = getattr(torch.nn, name)(3, 5, **kw)
    f = getattr(nn, name)(3, 5, **kw)
    compare(t, f, [randn(4, 3)])  # zero initial state
    if name == "LSTMCell":
        h, c = randn(4, 5), randn(4, 5)
        ht, ct = torch.tensor(h, requires_grad=True), torch.tensor(c, requires_grad=True)
        hf, cf = tinyfw.tensor(h, requires_grad=True), tinyfw.tensor(c, requires_grad=True)
        x = randn(4, 3)
        ot = t(torch.tensor(x), (ht, ct))
        of = f(tinyfw.tensor(x), (hf, cf))
        (ot[0].sum() + 2 * ot[1].sum()).backward()
        (of[0].sum() + 2 * of[1].sum()).backward()
        for a, b in [(of[0], ot[0]), (of[1], ot[1]), (hf.grad, ht.grad), (cf.grad, ct.grad)]:
            assert_close(a, b)
    else:
        compare(t, f, [randn(4, 3), randn(4, 5)])
        compare(t, f, [randn(3)])  # unbatched


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False),
                                                                  (2, False, True),
                                                                  (2, True, False)])
def test_sequence_layers(name, num_layers, bidirectional, batch_first):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    t = getattr(torch.nn, name)(3, 4, **kw)
    f = getattr(nn, name)(3, 4, **kw)
    x = randn(2, 5, 3) if batch_first else randn(5, 2, 3)
    assert list(f.state_dict()) == list(t.state_dict())
    compare(t, f, [x])


def test_sequence_layers_with_initial_state_unbatched_and_errors():
    t, f = torch.nn.GRU(3, 4, num_layers=2), nn.GRU(3, 4, num_layers=2)
    compare(t, f, [randn(6, 2, 3), randn(2, 2, 4)])
    compare(t, f, [randn(6, 3)])  # unbatched (L, H_in)
    t, f = torch.nn.LSTM(3, 4, batch_first=True), nn.LSTM(3, 4, batch_first=True)
    copy_weights(t, f)
    x, h, c = randn(2, 5, 3), randn(1, 2, 4), randn(1, 2, 4)
    ot, (ht, ct) = t(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
    of, (hf, cf) = f(tinyfw.tensor(x), (tinyfw.tensor(h), tinyfw.tensor(c)))
    for a, b in [(of, ot), (hf, ht), (cf, ct)]:
        assert_close(a, b)
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 2, 4\) should be \(1, 2, 4\)"):
        f(tinyfw.tensor(x), (tinyfw.zeros(2, 2, 4), tinyfw.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match="expected input"):
        f(tinyfw.zeros(2, 5, 7))


def test_rnn_dropout_between_layers_only_in_training():
    f = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = tinyfw.randn(5, 2, 3)
    f.eval()
    a = npy(f(x)[0])
    np.testing.assert_array_equal(npy(f(x)[0]), a)
    f.train()
    tinyfw.manual_seed(0)
    b = npy(f(x)[0])
    assert not np.allclose(a, b)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_self(batch_first, average):
    t = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    f = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    x = randn(2, 5, 8) if batch_first else randn(5, 2, 8)

    class Self(torch.nn.Module):
        def __init__(self, m, avg):
            super().__init__()
            self.m, self.avg = m, avg

        def forward(self, x, **kw):
            return self.m(x, x, x, average_attn_weights=self.avg, **kw)

    class SelfF(nn.Module):
        def __init__(self, m, avg):
            super().__init__()
            self.m, self.avg = m, avg

        def forward(self, x, **kw):
            return self.m(x, x, x, average_attn_weights=self.avg, **kw)

    compare(Self(t, average), SelfF(f, average), [x])


def test_multihead_attention_masks_cross_attention_float64():
    t = torch.nn.MultiheadAttention(6, 3, batch_first=True).double()
    f = nn.MultiheadAttention(6, 3, batch_first=True).double()
    q, k, v = randn(2, 4, 6, dtype=np.float64), randn(2, 3, 6, dtype=np.float64), \
        randn(2, 3, 6, dtype=np.float64)
    kpm = np.array([[False, False, True], [False, True, True]])
    am_bool = np.array([[False, True, False]] * 4)
    am_float = randn(2 * 3, 4, 3, dtype=np.float64)
    for kw_np in [dict(key_padding_mask=kpm), dict(attn_mask=am_bool),
                  dict(attn_mask=am_float, key_padding_mask=kpm)]:
        compare(t, f, [q, k, v], dtype="float64",
                kwargs_t={k_: torch.tensor(a) for k_, a in kw_np.items()},
                kwargs_f={k_: tinyfw.tensor(a) for k_, a in kw_np.items()})
    _, w = f(tinyfw.tensor(q), tinyfw.tensor(k), tinyfw.tensor(v),
             key_padding_mask=tinyfw.tensor(kpm))
    assert not npy(w)[0, :, 2].any() and not npy(w)[1, :, 1:].any()
    out, w = f(tinyfw.tensor(q), tinyfw.tensor(k), tinyfw.tensor(v), need_weights=False)
    assert w is None
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 2\) should be \(4, 3\)"):
        f(tinyfw.tensor(q), tinyfw.tensor(k), tinyfw.tensor(v), attn_mask=tinyfw.zeros(2, 2))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(6, 4)


def test_multihead_attention_dropout_and_unbatched():
    f = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = tinyfw.randn(3, 4)
    f.eval()
    a, _ = f(x, x, x)
    assert a.shape == (3, 4)
    f.train()
    tinyfw.manual_seed(1)
    b, w = f(x, x, x)
    assert not np.allclose(npy(a), npy(b)) and w.shape == (3, 3)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer(norm_first, activation):
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, activation=activation,
              norm_first=norm_first, batch_first=True)
    t = torch.nn.TransformerEncoderLayer(**kw)
    f = nn.TransformerEncoderLayer(**kw)
    assert list(f.state_dict()) == list(t.state_dict())
    x = randn(2, 5, 8)
    compare(t, f, [x])
    mask = nn.generate_square_subsequent_mask(5)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    np.testing.assert_array_equal(npy(mask), tmask.numpy())
    kpm = np.array([[False] * 5, [False, False, False, True, True]])
    compare(t, f, [x], kwargs_t=dict(src_mask=tmask, src_key_padding_mask=torch.tensor(kpm)),
            kwargs_f=dict(src_mask=mask, src_key_padding_mask=tinyfw.tensor(kpm)))


def test_transformer_encoder_stack_and_dropout_in_train_mode():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    assert len(enc.layers) == 2 and enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    x = tinyfw.randn(5, 2, 8)  # (S, N, E)
    enc.eval()
    a = enc(x)
    np.testing.assert_array_equal(npy(enc(x)), npy(a))
    enc.train()
    b = enc(x)
    assert b.shape == (5, 2, 8) and not np.allclose(npy(a), npy(b))
    t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                                    norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    f = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                              norm=nn.LayerNorm(8))
    compare(t, f, [randn(5, 2, 8)])
