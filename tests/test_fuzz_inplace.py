"""The in-place fuzz (issue 14): random op chains with writes into intermediates, views,
masks, indices and buffers, in tinyfw and PyTorch; tinyfw must never return numbers where
PyTorch refuses, nor different numbers.  CI runs a short profile; the long run
(`python tests/fuzz_chains.py 100000`) is recorded in the closing notes.
TINYFW_FUZZ_CHAINS sets the number of chains here."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import tinyfw

from fuzz_chains import generate, outcome, run
from helpers import requires_torch

N_CHAINS = int(os.environ.get("TINYFW_FUZZ_CHAINS", "1500"))


@requires_torch
@pytest.mark.parametrize("seed", [0, 1])
def test_no_silent_difference_from_pytorch(seed):
    import torch

    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    silent = []
    for i in range(N_CHAINS // 2):
        prog = generate(rng, length=int(rng.integers(3, 12)))
        ours, theirs = run(prog, tinyfw), run(prog, torch)
        o = outcome(ours, theirs)
        counts[o] += 1
        if o == "silent" and len(silent) < 3:
            silent.append((i, [p[0] for p in prog], ours, theirs))
    assert counts["same"] > 0.5 * sum(counts.values()), counts
    assert not silent, f"{counts}; first silent chains: {silent}"
