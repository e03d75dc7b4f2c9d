"""Graph passes: each module exposes ``run(graph, **opts) -> dict`` (what it did)."""
from __future__ import annotations

from . import (const_fold, cse, dce, fuse_elementwise, fuse_epilogue, memory_plan, prepack,
               simplify)

__all__ = ["dce", "cse", "const_fold", "simplify", "fuse_elementwise", "fuse_epilogue",
           "memory_plan", "prepack"]
