"""Mixed precision: `autocast` (per-op casts by each op's declared policy) and
`GradScaler` (dynamic loss scaling for float16).  docs/amp.md has the policy table."""
from __future__ import annotations

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype"]
