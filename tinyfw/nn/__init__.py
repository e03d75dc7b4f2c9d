"""Neural-network building blocks, shaped like ``torch.nn``:

- ``Module``/``Parameter`` and the containers ``Sequential``, ``ModuleList``, ``ModuleDict``;
- layers (Linear, Conv2d, pooling, BatchNorm/LayerNorm, Dropout, Embedding, activations,
  MultiheadAttention/TransformerEncoderLayer, RNN/LSTM/GRU and their cells) and losses
  (including knowledge distillation), all composed from tinyfw ops;
- ``nn.functional`` (the functional forms) and ``nn.init`` (initialisers).
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from . import utils  # noqa: F401
from . import parallel  # noqa: F401
from .parallel import DataParallel  # noqa: F401

__all__ = list(_modules_all) + ["DataParallel", "functional", "init", "utils", "parallel"]
