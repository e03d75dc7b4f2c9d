"""The char-LM example's training step, tinyfw next to PyTorch on the same model and batch.

    python benchmarks/bench_charlm.py [--repeat 15]

Model (examples/char_lm.py): token + position embeddings, 2 pre-norm Transformer encoder
layers (d 64, 4 heads, feed-forward 256, GELU, dropout 0.1, causal mask), final LayerNorm,
linear read-out over a 65-character vocabulary; batch 32 of 32 characters.  One step:
forward, cross-entropy, backward, gradient-norm clipping at 1.0, AdamW.  Both frameworks
start from the same weights and see the same batch; figures are medians of interleaved
batches, ratios to PyTorch.  Target (issue 10): at most 1.2x PyTorch's time.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "examples"))

import tinyfw  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from benchmarks.common import compare, print_table  # noqa: E402
from char_lm import CharTransformer  # noqa: E402

VOCAB, BLOCK, BATCH, D, LAYERS = 65, 32, 32, 64, 2


def tinyfw_step(model, x, y):
    """A closure running one tinyfw training step."""
    opt = tinyfw.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    xt, yt = tinyfw.tensor(x), tinyfw.tensor(y)

    def step():
        logits = model(xt)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), yt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        tinyfw.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def torch_step(model, x, y):
    """The same step in PyTorch, from the tinyfw model's weights."""
    import torch

    class TorchCharTransformer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = torch.nn.Embedding(VOCAB, D)
            self.pos = torch.nn.Embedding(BLOCK, D)
            layer = torch.nn.TransformerEncoderLayer(D, 4, 4 * D, 0.1, activation="gelu",
                                                     batch_first=True, norm_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.norm = torch.nn.LayerNorm(D)
            self.head = torch.nn.Linear(D, VOCAB)
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(BLOCK))

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
            return self.head(self.norm(self.encoder(x, mask=self.mask, is_causal=True)))

    tm = TorchCharTransformer()
    with torch.no_grad():
        theirs = dict(tm.named_parameters())
        for name, p in model.named_parameters():
            theirs[name].copy_(torch.from_numpy(p.detach().cpu().numpy()))
    opt = torch.optim.AdamW(tm.parameters(), lr=3e-3, weight_decay=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        logits = tm(xt)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), yt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        opt.step()
    return step


def main() -> None:
    """Time the step in both frameworks and print medians and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    tinyfw.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (BATCH, BLOCK)).astype(np.int64)
    y = rng.integers(0, VOCAB, (BATCH, BLOCK)).astype(np.int64)
    model = CharTransformer(VOCAB, BLOCK, D, num_layers=LAYERS)
    fns = {"tinyfw": tinyfw_step(model, x, y)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(tinyfw.get_num_threads())
        fns["torch"] = torch_step(model, x, y)
    rows = compare(fns, repeat=args.repeat)
    print_table(f"char-LM Transformer training step (batch {BATCH}x{BLOCK}, d {D}, {LAYERS} "
                f"layers, AdamW + clipping), threads: {tinyfw.get_num_threads()}", rows,
                baseline="torch" if torch is not None else None, target=1.2)


if __name__ == "__main__":
    main()
