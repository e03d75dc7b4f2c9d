"""Random numbers: `Generator`, `manual_seed`, and the default generator.

A Generator wraps numpy's PCG64 bit generator: the same seed gives the same numbers on
every run and every machine, which is what a test oracle needs.
"""
from __future__ import annotations

import numpy as np


class Generator:
    """A seeded source of random numbers (PCG64)."""

    def __init__(self, seed: int | None = None):
        self.manual_seed(np.random.SeedSequence().entropy if seed is None else seed)

    def manual_seed(self, seed: int) -> "Generator":
        """Reset to the stream that `seed` starts."""
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed: the seed must be an int, got {type(seed).__name__}")
        self._seed = int(seed) & ((1 << 64) - 1)
        self.np = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        """The seed this generator was last reset with."""
        return self._seed

    def seed(self) -> int:
        """Reseed from fresh entropy; returns the new seed."""
        s = int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def get_state(self) -> dict:
        """The full state (a JSON-able dict), for checkpoints."""
        return self.np.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore a state returned by get_state."""
        self.np.bit_generator.state = state

    def next_seed(self) -> int:
        """A 64-bit seed drawn from this stream (for kernels that run their own RNG)."""
        return int(self.np.integers(0, 1 << 63))


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator; returns it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The default generator's seed."""
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default generator's state."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore the default generator's state."""
    default_generator.set_state(state)


def _gen(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).np
