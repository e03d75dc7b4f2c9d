"""Random op chains with in-place writes, run in tinyfw and in PyTorch (issue 14).

A chain is a list of instructions over a register file: float leaves that require grad,
bool masks and int64 indices that do not, and intermediates. Instructions apply ops
(elementwise, where, masked_fill, indexing, gather, views), and write in place into
intermediates, views of them, masks, indices and no-grad buffers, as a hostile user would.
The chain ends with a loss over every float register and a backward.

`run(program, lib)` executes a program with `lib` = tinyfw or torch (the names are the
same) and returns ("grads", [...]) or ("error", ExceptionClass name). `outcome` compares
the two frameworks: "same" (equal gradients or both raised), "tinyfw-refuses" (only
tinyfw raised: a documented difference when intended), "silent" (PyTorch raised and tinyfw
returned numbers, or both returned different numbers: a defect).
"""
from __future__ import annotations

import numpy as np

SHAPE = (3, 4)
UNARY = ("exp", "tanh", "sigmoid", "relu", "neg", "sin")
BINARY = ("add", "mul", "sub", "maximum")
INPLACE_FLOAT = ("add_", "mul_")


def generate(rng: np.random.Generator, length: int = 8) -> list:
    """A random program: a list of tuples (op, *operands) over register indices."""
    prog = [("leaf", rng.standard_normal(SHAPE)), ("leaf", rng.standard_normal(SHAPE)),
            ("mask", rng.random(SHAPE) < 0.5), ("index", rng.integers(0, SHAPE[0], 2)),
            ("index2", rng.integers(0, SHAPE[1], SHAPE))]
    kinds = ["f", "f", "m", "i", "g"]

    def pick(kind):
        regs = [i for i, k in enumerate(kinds) if k == kind]
        return int(rng.choice(regs))

    for _ in range(length):
        r = rng.random()
        if r < 0.18:
            prog.append(("unary", str(rng.choice(UNARY)), pick("f")))
        elif r < 0.34:
            prog.append(("binary", str(rng.choice(BINARY)), pick("f"), pick("f")))
        elif r < 0.42:
            prog.append(("where", pick("m"), pick("f"), pick("f")))
        elif r < 0.48:
            prog.append(("masked_fill", pick("f"), pick("m"), float(rng.standard_normal())))
        elif r < 0.54:
            prog.append(("index_rows", pick("f"), pick("i")))  # shape (2, 4): a new kind
            kinds.append("r")
            continue
        elif r < 0.60:
            prog.append(("gather", pick("f"), pick("g")))
        elif r < 0.68:
            prog.append(("view", str(rng.choice(["slice", "reshape", "transpose2", "select"])),
                         pick("f")))
        elif r < 0.80:
            prog.append(("inplace", str(rng.choice(INPLACE_FLOAT)), pick("f"),
                         float(rng.uniform(0.5, 2.0)), bool(rng.random() < 0.5)))
            kinds.append(None)  # in-place ops define no new register
            continue
        elif r < 0.86:
            prog.append(("write_mask", pick("m")))
            kinds.append(None)
            continue
        elif r < 0.91:
            prog.append(("write_index", pick("i"), int(rng.integers(0, SHAPE[0]))))
            kinds.append(None)
            continue
        else:
            prog.append(("buffer", pick("f"), bool(rng.random() < 0.5)))
        kinds.append("f")
    return prog


def _view(lib, x, how):
    if how == "slice":  # rows 0..2 of a (3, 4): keep the shape by concatenating a copy
        return lib.cat([x[0:2], x[2:3]], 0)
    if how == "reshape":
        return x.reshape(4, 3).reshape(3, 4)
    if how == "transpose2":
        return x.t().t()
    return x.unsqueeze(0).squeeze(0)


def run(program: list, lib) -> tuple:
    """Execute `program` with tinyfw or torch; ("grads", arrays) or ("error", name)."""
    f64 = lib.float64
    regs: list = []
    leaves = []
    try:
        for ins in program:
            op = ins[0]
            if op == "leaf":
                t = lib.tensor(ins[1], dtype=f64, requires_grad=True)
                leaves.append(t)
                regs.append(t)
            elif op == "mask":
                regs.append(lib.tensor(ins[1]))
            elif op in ("index", "index2"):
                regs.append(lib.tensor(ins[1], dtype=lib.int64))
            elif op == "unary":
                regs.append(getattr(lib, ins[1])(regs[ins[2]]))
            elif op == "binary":
                regs.append(getattr(lib, ins[1])(regs[ins[2]], regs[ins[3]]))
            elif op == "where":
                regs.append(lib.where(regs[ins[1]], regs[ins[2]], regs[ins[3]]))
            elif op == "masked_fill":
                regs.append(regs[ins[1]].masked_fill(regs[ins[2]], ins[3]))
            elif op == "index_rows":
                regs.append(regs[ins[1]][regs[ins[2]]])
            elif op == "gather":
                regs.append(lib.gather(regs[ins[1]], 1, regs[ins[2]]))
            elif op == "view":
                regs.append(_view(lib, regs[ins[2]], ins[1]))
            elif op == "inplace":
                target = regs[ins[2]]
                if ins[4]:  # through a view of it
                    target = target[1:]
                getattr(target, ins[1])(ins[3])
                regs.append(None)
            elif op == "write_mask":
                regs[ins[1]].fill_(False)
                regs.append(None)
            elif op == "write_index":
                regs[ins[1]].fill_(ins[2])
                regs.append(None)
            elif op == "buffer":  # a value requiring grad written into a no-grad buffer
                buf = lib.zeros(SHAPE, dtype=f64)
                if ins[2]:
                    buf[0:2].copy_(regs[ins[1]][0:2] * 1)
                else:
                    buf.copy_(regs[ins[1]] * 1)
                regs.append(buf)
        weights = np.linspace(0.5, 1.5, num=SHAPE[0] * SHAPE[1]).reshape(SHAPE)
        loss = None
        for t in regs:
            if t is None or not t.requires_grad:
                continue
            w = lib.tensor(weights[: t.shape[0]], dtype=f64)
            term = (t * w).sum()
            loss = term if loss is None else loss + term
        if loss is None:
            return ("grads", [None for _ in leaves])
        loss.backward()
        return ("grads", [None if t.grad is None else t.grad.detach().cpu().numpy().copy()
                          for t in leaves])
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        return ("error", type(e).__name__)


def outcome(ours: tuple, theirs: tuple) -> str:
    """'same', 'tinyfw-refuses' or 'silent' (see the module doc)."""
    if ours[0] == "error" and theirs[0] == "error":
        return "same"
    if ours[0] == "error":
        return "tinyfw-refuses"
    if theirs[0] == "error":
        return "silent"
    for a, b in zip(ours[1], theirs[1]):
        if (a is None) != (b is None):
            # no gradient vs zeros: PyTorch leaves .grad None for a leaf that reached the
            # loss only through ops with zero derivative paths it pruned; treat zeros as None
            z = a if a is not None else b
            if not np.all(z == 0):
                return "silent"
            continue
        if a is not None and not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
            return "silent"
    return "same"


def main() -> None:
    """Run many chains and print the outcome counts: python tests/fuzz_chains.py N [seed]."""
    import sys
    from collections import Counter

    import torch

    import tinyfw

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    examples: dict = {}
    for i in range(n):
        prog = generate(rng, length=int(rng.integers(3, 12)))
        ours, theirs = run(prog, tinyfw), run(prog, torch)
        o = outcome(ours, theirs)
        counts[o] += 1
        counts[f"{o}: tinyfw {ours[0]} / torch {theirs[0]}"] += 1
        if o != "same" and o not in examples:
            examples[o] = (i, prog, ours, theirs)
    for k, v in sorted(counts.items()):
        print(f"{v:>8}  {k}")
    for o, (i, prog, ours, theirs) in examples.items():
        print(f"first {o} (chain {i}): {[x[:1] + tuple(y for y in x[1:] if not hasattr(y, 'shape')) for x in prog]}")
        print(f"   tinyfw {ours[0]} {ours[1] if ours[0] == 'error' else ''} / torch {theirs[0]} "
              f"{theirs[1] if theirs[0] == 'error' else ''}")


if __name__ == "__main__":
    main()
