"""torch.einsum: Einstein summation, lowered to tinyfw's own ops.

The equation is parsed into per-operand label lists (``...`` becomes one label per
broadcast dim, right-aligned across operands).  Each operand first loses its repeated
labels (a diagonal: a strided view of the two dims flattened) and the labels no other
operand and not the output uses (a sum).  Then operands are contracted left to right, each
pair as one batched GEMM: both are permuted to (batch, free, contracted) order, reshaped
to 3-d and multiplied by `matmul` (the C++ GEMM on the cpu backend), and the product is
reshaped back.  Gradients of every order come from those ops.
"""
from __future__ import annotations

import math

from ._util import Tensor, ensure_tensor
from .linalg import matmul

__all__ = ["einsum"]


def _err(msg: str):
    return RuntimeError(f"einsum(): {msg}")


def _parse_term(term: str, ndim: int, k: int) -> list:
    """The labels of one operand's subscript string; '...' expands to ('...', i) labels
    numbered from the right so that broadcast dims of different operands line up."""
    if term.count("...") > 1 or term.replace("...", "").count("."):
        raise _err(f"found '.' for operand {k} that is not part of any ellipsis")
    letters = term.replace("...", "")
    for c in letters:
        if not c.isalpha() or not c.isascii():
            raise _err(f"invalid subscript given at index {term.index(c)} in the equation "
                       f"string, subscripts must be in [a-zA-Z]")
    if "..." not in term:
        if len(letters) != ndim:
            raise _err(f"the number of subscripts in the equation ({len(letters)}) does not "
                       f"match the number of dimensions ({ndim}) for operand {k} and no "
                       "ellipsis was given")
        return list(letters)
    n_ell = ndim - len(letters)
    if n_ell < 0:
        raise _err(f"the number of subscripts in the equation ({len(letters)}) is more than "
                   f"the number of dimensions ({ndim}) for operand {k}")
    head, tail = term.split("...")
    return list(head) + [("...", n_ell - 1 - i) for i in range(n_ell)] + list(tail)


def _label_key(label) -> tuple:
    # implicit output order: broadcast dims (left to right) first, then letters sorted
    if isinstance(label, tuple):
        return (0, -label[1], "")
    return (1, 0, label)


def _diagonal(x: Tensor, labels: list) -> tuple:
    """Take the diagonal over every repeated label, so each label names one dim."""
    while True:
        seen = {}
        for i, lab in enumerate(labels):
            if lab in seen:
                break
            seen[lab] = i
        else:
            return x, labels
        j = seen[lab]
        if x.shape[i] != x.shape[j]:
            raise _err(f"subscript {lab} is repeated for operand but the sizes don't match, "
                       f"{x.shape[j]} != {x.shape[i]}")
        rest = [d for d in range(x.ndim) if d not in (i, j)]
        n = x.shape[i]
        moved = x.permute(*rest, j, i)
        batch = tuple(moved.shape[:-2])
        diag = moved.reshape(*batch, n * n)[..., ::n + 1] if n else moved.reshape(*batch, 0)
        labels = [labels[d] for d in rest] + [lab]
        x = diag


def _sum_out(x: Tensor, labels: list, keep: set) -> tuple:
    drop = [d for d, lab in enumerate(labels) if lab not in keep]
    if drop:
        x = x.sum(tuple(drop))
        labels = [lab for lab in labels if lab in keep]
    return x, labels


def _contract(a: Tensor, la: list, b: Tensor, lb: list, keep: set) -> tuple:
    """a and b contracted over their shared labels not in `keep`, as one batched GEMM."""
    sb = set(lb)
    shared = [lab for lab in la if lab in sb]
    sizes: dict = {}  # a size-1 dim broadcasts against the other operand's
    for x, lx in ((a, la), (b, lb)):
        for lab, s in zip(lx, x.shape):
            cur = sizes.get(lab)
            if cur is None or cur == 1:
                sizes[lab] = s
            elif s not in (1, cur):
                name = "..." if isinstance(lab, tuple) else lab
                raise _err(f"operands do not broadcast: subscript {name} has sizes {cur} "
                           f"and {s}")
    batch = [lab for lab in shared if lab in keep]
    summed = [lab for lab in shared if lab not in keep]
    a_free = [lab for lab in la if lab not in sb]
    b_free = [lab for lab in lb if lab not in set(la)]

    def arrange(x, lx, order):
        x = x.permute(*[lx.index(lab) for lab in order])
        target = [sizes[lab] for lab in order]
        return x.expand(*target) if list(x.shape) != target else x

    A = arrange(a, la, batch + a_free + summed)
    B = arrange(b, lb, batch + summed + b_free)
    nb = [sizes[lab] for lab in batch]
    m = math.prod(sizes[lab] for lab in a_free)
    k = math.prod(sizes[lab] for lab in summed)
    n = math.prod(sizes[lab] for lab in b_free)
    bsz = math.prod(nb)
    out = matmul(A.reshape(bsz, m, k), B.reshape(bsz, k, n))
    out = out.reshape(*nb, *[sizes[lab] for lab in a_free], *[sizes[lab] for lab in b_free])
    return out, batch + a_free + b_free


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation as torch.einsum: ``einsum("bij,bjk->bik", a, b)``; operands may
    also come as one list.  Supports '...', repeated subscripts (diagonals) and the
    implicit output (subscripts used once, sorted, after the broadcast dims)."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string, got {type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise _err("must provide at least one operand")
    ops = [ensure_tensor(x, "einsum") for x in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise _err(f"more operands were provided than specified in the equation"
                   if len(ops) > len(terms) else
                   "fewer operands were provided than specified in the equation")
    labels = [_parse_term(t, x.ndim, k) for k, (t, x) in enumerate(zip(terms, ops))]
    counts: dict = {}
    for lx in labels:
        for lab in lx:
            counts[lab] = counts.get(lab, 0) + 1
    if arrow:
        n_ell = max((sum(isinstance(lab, tuple) for lab in lx) for lx in labels), default=0)
        if rhs.count("...") > 1:
            raise _err("found more than one ellipsis in the output subscripts")
        # (broadcast dims left out of an explicit output are summed, as in torch)
        out = _parse_term(rhs, len(rhs.replace("...", "")) + (n_ell if "..." in rhs else 0), -1) \
            if rhs else []
        for lab in out:
            if not isinstance(lab, tuple) and lab not in counts:
                raise _err(f"output subscript {lab} does not appear in the equation for any "
                           "input operand")
        plain = [lab for lab in out if not isinstance(lab, tuple)]
        if len(set(plain)) != len(plain):
            raise _err("output subscript appears more than once in the output")
    else:
        out = sorted((lab for lab, c in counts.items() if c == 1 or isinstance(lab, tuple)),
                     key=_label_key)
    # per operand: diagonals, then labels only it uses and the output does not
    keep_out = set(out)
    xs, ls = [], []
    for k, (x, lx) in enumerate(zip(ops, labels)):
        x, lx = _diagonal(x, lx)
        others = {lab for j, ly in enumerate(labels) if j != k for lab in ly}
        x, lx = _sum_out(x, lx, keep_out | others)
        xs.append(x)
        ls.append(lx)
    x, lx = xs[0], ls[0]
    for k in range(1, len(xs)):
        later = {lab for ly in ls[k + 1:] for lab in ly}
        x, lx = _contract(x, lx, xs[k], ls[k], keep_out | later)
    x, lx = _sum_out(x, lx, keep_out)
    # ellipsis labels of the output that some operand had at size 1 only: already there
    missing = [lab for lab in out if lab not in lx]
    for lab in missing:  # a broadcast dim no operand has (all had fewer dims): size 1
        x = x.unsqueeze(-1)
        lx = lx + [lab]
    return x.permute(*[lx.index(lab) for lab in out]) if lx != out else x
