"""A small character-level language model: a causal Transformer encoder on a text that
ships with the repo (examples/data/tiny_corpus.txt, public domain).

    python examples/char_lm.py            # ~400 steps, then samples some text
    python examples/char_lm.py --quick    # 30 steps, for tests
    python examples/char_lm.py --device cuda
    python examples/char_lm.py --amp bf16  # mixed precision (fp16: + GradScaler)
    python examples/char_lm.py --nproc 2   # data-parallel: each of 2 processes draws half
                                           # of every batch, DistributedDataParallel

Each training example is a random window of `block` characters; the model predicts every
next character under a causal mask (position i sees positions <= i).  Prints the loss
before and after training (nats per character; a uniform guess is ln(vocab)) and a
sample drawn from the trained model.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import tinyfw  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from tinyfw.utils.progress import progress  # noqa: E402
from _common import (Timer, amp_arg, amp_tools, device_arg, in_distributed_run,  # noqa: E402
                     model_device, nproc_arg, num_parameters, relaunch,
                     require_cpu_for_parallel)

HERE = os.path.dirname(os.path.abspath(__file__))


class CharTransformer(nn.Module):
    """Token + learned position embeddings, a pre-norm Transformer encoder with a causal
    mask, a final LayerNorm and a linear read-out to the vocabulary."""

    def __init__(self, vocab: int, block: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.block = block
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer("mask", nn.generate_square_subsequent_mask(block),
                             persistent=False)

    def forward(self, idx: tinyfw.Tensor) -> tinyfw.Tensor:
        """Logits (N, L, vocab) for token ids (N, L), L <= block."""
        n, length = idx.shape
        x = self.tok(idx) + self.pos(tinyfw.arange(length, device=idx.device))
        mask = self.mask[:length, :length]
        return self.head(self.norm(self.encoder(x, mask=mask)))


def get_batch(data: np.ndarray, block: int, batch: int, gen: tinyfw.Generator, device):
    """`batch` random windows: inputs and the same windows shifted by one character, on
    `device`."""
    starts = tinyfw.randint(0, len(data) - block - 1, (batch,), generator=gen).tolist()
    x = np.stack([data[s:s + block] for s in starts])
    y = np.stack([data[s + 1:s + block + 1] for s in starts])
    return tinyfw.tensor(x, device=device), tinyfw.tensor(y, device=device)


@tinyfw.no_grad()
def estimate_loss(model: nn.Module, data: np.ndarray, block: int, gen: tinyfw.Generator,
                  batches: int = 4) -> float:
    """Mean next-character cross-entropy over a few random batches (eval mode)."""
    model.eval()
    losses = []
    for _ in range(batches):
        x, y = get_batch(data, block, 32, gen, model_device(model))
        logits = model(x)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      y.reshape(-1)).item())
    model.train()
    return float(np.mean(losses))


@tinyfw.no_grad()
def sample(model: nn.Module, prompt: np.ndarray, length: int, gen: tinyfw.Generator,
           temperature: float = 0.8) -> np.ndarray:
    """Extend `prompt` (token ids) by `length` characters drawn from the model."""
    model.eval()
    out = list(prompt)
    rng = tinyfw.random._gen(gen)
    for _ in range(length):
        ctx = tinyfw.tensor(np.array(out[-model.block:], np.int64)[None],
                            device=model_device(model))
        logits = model(ctx)[0, -1] / temperature
        p = F.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)
        out.append(int(rng.choice(len(p), p=p / p.sum())))
    return np.array(out)


def main(argv=None) -> tuple[float, float]:
    """Train and sample; returns (initial loss, final loss) on held-out text."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default=os.path.join(HERE, "data", "tiny_corpus.txt"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="30 steps (smoke test)")
    ap.add_argument("--no-progress", action="store_true")
    device_arg(ap)
    amp_arg(ap)
    nproc_arg(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 30
    if args.nproc > 1 or in_distributed_run():
        require_cpu_for_parallel(args.device)
    relaunch(args.nproc, os.path.abspath(__file__), argv)
    if in_distributed_run():
        import tinyfw.distributed as dist
        dist.init_process_group()
        try:
            return train(args)
        finally:
            dist.destroy_process_group()
    return train(args)


def train(args) -> tuple[float, float]:
    """The training run of main(); in a distributed run every rank draws its share of
    each batch and DistributedDataParallel averages the gradients; rank 0 reports."""
    rank, world = 0, 1
    if in_distributed_run():
        import tinyfw.distributed as dist
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.batch_size % world:
            raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the "
                             f"{world} workers")
    say = print if rank == 0 else (lambda *a, **k: None)

    with open(args.text, encoding="utf-8") as fh:
        text = fh.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], np.int64)
    cut = int(len(data) * 0.9)
    train, val = data[:cut], data[cut:]

    tinyfw.manual_seed(args.seed)
    model = CharTransformer(len(chars), args.block, args.d_model, num_layers=args.layers)
    model.to(args.device)
    opt = tinyfw.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    region, scaler = amp_tools(args.amp, args.device)
    step_model = model
    if world > 1:
        step_model = tinyfw.nn.parallel.DistributedDataParallel(model)
    gen = tinyfw.Generator(args.seed + 1 + 1000 * rank)  # each rank its own windows
    say(f"{len(text)} characters, vocabulary {len(chars)}, model "
          f"{num_parameters(model):,} parameters (uniform guess: {math.log(len(chars)):.3f} "
          "nats/char)")
    before = estimate_loss(model, val, args.block, tinyfw.Generator(123))
    clock = Timer()
    bar = progress(range(args.steps), "training", args.steps,
                   disable=args.no_progress or rank != 0, leave=False)
    for step in bar:
        x, y = get_batch(train, args.block, args.batch_size // world, gen, args.device)
        with region:
            logits = step_model(x)
            loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # clip the true gradients
        tinyfw.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        if not args.no_progress and rank == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}",
                            chars_s=f"{(step + 1) * x.numel() * world / clock():.0f}")
    after = estimate_loss(model, val, args.block, tinyfw.Generator(123))
    say(f"validation loss: {before:.3f} -> {after:.3f} nats/char after {args.steps} steps "
          f"({clock():.1f} s)")
    prompt = np.array([stoi[c] for c in "The keeper "], np.int64)
    text_out = "".join(chars[i] for i in sample(model, prompt, 160, tinyfw.Generator(7)))
    say("sample:", text_out.replace("\n", " "))
    return before, after


if __name__ == "__main__":
    main()
