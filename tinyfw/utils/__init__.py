"""Utilities above the core: `progress` (tqdm progress bars and the `fit` training loop)."""
from .progress import evaluate, fit, progress  # noqa: F401
