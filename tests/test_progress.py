"""The fit/evaluate training loop learns the digits and records its history."""
from __future__ import annotations

import tinyfw
from tinyfw import nn, optim
from tinyfw.data import DataLoader
from tinyfw.data.datasets import load_digits
from tinyfw.utils import evaluate, fit


def test_fit_learns_digits_mlp():
    tinyfw.manual_seed(0)
    train, test = load_digits("train", flatten=True), load_digits("test", flatten=True)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, 3, 0.5)
    logs = []
    hist = fit(model, nn.CrossEntropyLoss(), opt,
               DataLoader(train, batch_size=64, shuffle=True, generator=tinyfw.Generator(0)),
               epochs=5, val_loader=DataLoader(test, batch_size=256), scheduler=sched,
               clip_grad_norm=5.0, show_progress=False, log=logs.append)
    assert len(hist["train_loss"]) == 5 and len(logs) == 5
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_acc"][-1] > 0.9
    assert opt.param_groups[0]["lr"] == 0.01 * 0.5
    assert model.training
    res = evaluate(model, nn.CrossEntropyLoss(), DataLoader(test, batch_size=100))
    assert abs(res["acc"] - hist["val_acc"][-1]) < 1e-12
