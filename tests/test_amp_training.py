"""Mixed precision end to end: fit(amp=...), the examples' --amp, half models with the
optimizers' float32 master weights."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinyfw
from tinyfw import nn, optim
from tinyfw.data import DataLoader
from tinyfw.data.datasets import load_digits
from tinyfw.utils import fit
from tests.helpers import npy
from tests.test_examples import run


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_fit_learns_digits_under_amp(amp):
    tinyfw.manual_seed(0)
    train, test = load_digits("train", flatten=True), load_digits("test", flatten=True)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = optim.Adam(model.parameters(), lr=0.01)
    scaler = tinyfw.amp.GradScaler(init_scale=2.0 ** 12, growth_interval=20)
    hist = fit(model, nn.CrossEntropyLoss(), opt,
               DataLoader(train, batch_size=64, shuffle=True, generator=tinyfw.Generator(0)),
               epochs=4, val_loader=DataLoader(test, batch_size=256), clip_grad_norm=5.0,
               show_progress=False, log=None, amp=amp,
               grad_scaler=scaler if amp == "fp16" else None)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_acc"][-1] > 0.9
    assert all(p.dtype is tinyfw.float32 and p.grad.dtype is tinyfw.float32
               for p in model.parameters())
    if amp == "fp16":  # clean steps grew the scale passed in
        assert scaler.get_scale() > 2.0 ** 12


def test_fit_rejects_an_unknown_amp_mode():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="amp must be 'bf16', 'fp16' or None, got 'int8'"):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1),
            [(tinyfw.randn(3, 2), tinyfw.randn(3, 2))], amp="int8", show_progress=False)


@pytest.mark.parametrize("half", ["half", "bfloat16"])
@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_half_models_train_through_float32_master_weights(half, opt_name):
    """model.half()/bfloat16() casts parameters and buffers; each optimizer keeps a
    float32 master copy, and the parameter is that copy rounded (not an update computed
    in half precision, where small steps would vanish)."""
    tinyfw.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    getattr(model, half)()
    low = tinyfw.float16 if half == "half" else tinyfw.bfloat16
    assert all(t.dtype is low for t in list(model.parameters()) + list(model.buffers())
               if t.dtype.is_floating_point)
    opt = getattr(optim, opt_name)(model.parameters(), lr=1e-3)
    x = tinyfw.randn(16, 4).to(low)
    for _ in range(3):
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    for p in model.parameters():
        master = opt.state[p]["master"]
        assert master.dtype is tinyfw.float32
        np.testing.assert_array_equal(npy(p), npy(master.to(low)))


# -- the examples ----------------------------------------------------------------------------
def _final_acc(out: str) -> float:
    return float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))


# (fp16 with its scaler is in the fast set through fit above; ~20 s on the check device)
@pytest.mark.parametrize("amp", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_train_digits_quick_amp(tmp_path, amp):
    out = run("train_digits.py", "--quick", "--amp", amp, "--out", str(tmp_path))
    assert _final_acc(out) >= 0.85, out
    state = tinyfw.load(tmp_path / "digits_cnn.tinyfw")
    assert (state["scaler"] != {}) == (amp == "fp16")


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_train_digits_cnn_reaches_97_percent_under_amp(tmp_path, amp):
    out = run("train_digits.py", "--amp", amp, "--out", str(tmp_path))
    assert _final_acc(out) >= 0.97, out


def _char_lm_loss(*args: str) -> float:
    out = run("char_lm.py", "--steps", "150", *args)
    return float(re.search(r"validation loss: [0-9.]+ -> ([0-9.]+)", out).group(1))


@pytest.mark.slow
def test_char_lm_loss_under_amp_is_within_2_percent_of_float32():
    """The same seed and batches: after 150 steps the validation loss (measured in
    float32) of the bf16 and fp16 runs is within 2% of the float32 run's."""
    base = _char_lm_loss()
    for amp in ("bf16", "fp16"):
        got = _char_lm_loss("--amp", amp)
        assert abs(got - base) <= 0.02 * base, (amp, got, base)
