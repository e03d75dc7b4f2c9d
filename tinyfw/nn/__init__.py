"""Neural-network building blocks: `functional` now; modules with the training stack."""
from . import functional  # noqa: F401
