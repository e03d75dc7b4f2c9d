"""`tinyfw.nn.utils.prune`: pruning with PyTorch's reparametrisation (`methods`), physical
shrinking after structured pruning (`shrink`), an iterative prune → fine-tune schedule
and a per-layer sparsity report (`schedule`).  docs/quantization.md has the workflow."""
from .methods import *  # noqa: F401,F403
from .methods import __all__ as _methods_all
from .schedule import *  # noqa: F401,F403
from .schedule import __all__ as _schedule_all
from .shrink import *  # noqa: F401,F403
from .shrink import __all__ as _shrink_all

__all__ = list(_methods_all) + list(_shrink_all) + list(_schedule_all)
