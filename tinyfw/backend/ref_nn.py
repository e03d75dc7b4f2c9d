"""nn primitives of the reference backend (convolution, pooling, fused losses, norms)."""
from __future__ import annotations

import numpy as np

__all__: list[str] = []
