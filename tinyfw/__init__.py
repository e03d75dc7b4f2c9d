"""tinyfw: a minimal deep-learning framework — tensors with autograd, a numpy reference
backend and C++ kernels, PyTorch-shaped API.

    import tinyfw
    x = tinyfw.randn(3, 4, requires_grad=True)
    (x * x).sum().backward()
    x.grad  # 2 * x
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import dtypes
from .dtypes import (DType, bfloat16, float16, float32, float64, get_default_dtype, int8,
                     int16, int32, int64, promote_types, result_type, set_default_dtype, uint8)
from .dtypes import bool_ as bool  # noqa: A001  (tinyfw.bool, as torch.bool)
from .device import Device as device, get_default_device, set_default_device
from .tensor import Tensor
from . import autograd
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.gradcheck import gradcheck, gradgradcheck
from .random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed,
                     set_rng_state)
from .creation import (arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full,
                       full_like, linspace, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, randperm, tensor, zeros, zeros_like)
from .dispatch import get_backend, set_backend
from .threads import get_num_threads, set_num_threads
from . import ops
from .ops import *  # noqa: F401,F403
from .ops import clone
# torch.linalg: the package tinyfw/linalg/ (`from . import linalg` would find the module
# tinyfw.ops.linalg that `from .ops import *` bound to this name)
from importlib import import_module as _import_module  # noqa: E402

linalg = _import_module(".linalg", __name__)
from . import nn, optim, data, jit  # noqa: E402,F401  (the layers above the core)
# torch.* activations and distances (issue 16)
from .nn.functional import (celu, celu_, cosine_similarity, pairwise_distance,  # noqa: E402,F401
                            rrelu, rrelu_, selu, selu_, threshold, threshold_)
from . import amp  # noqa: E402  (mixed precision)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402,F401
from . import onnx  # noqa: E402,F401  (export; needs the onnx package only when called)
from .serialization import load, save  # noqa: E402,F401  (checkpoints)
from . import memory, profiler  # noqa: E402,F401  (allocator statistics; per-op profiles)
from . import cuda  # noqa: E402,F401  (CUDA devices, streams, events, pinned memory)
from .summary import summary  # noqa: E402,F401  (layer table on the meta device)

half = float16
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001
short = int16


def is_tensor(x) -> bool:
    """True if x is a tinyfw Tensor."""
    return isinstance(x, Tensor)


def numel(x: Tensor) -> int:
    """The number of elements of x."""
    return x.numel()
