"""tinyfw.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), gradient clipping and
learning-rate schedulers (`tinyfw.optim.lr_scheduler`), shaped like ``torch.optim``.

    opt = tinyfw.optim.Adam(model.parameters(), lr=1e-3)
    sched = tinyfw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()

Each parameter's update is one fused backend kernel call (C++ when built, numpy
otherwise); float16/bfloat16 parameters keep float32 master weights in the state.
"""
from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "clip_grad_norm_",
           "clip_grad_value_", "lr_scheduler", "required"]
