"""torch.einsum: Einstein summation, lowered to tinyfw's own ops.

The equation is parsed into per-operand label lists (``...`` becomes one label per
broadcast dim, right-aligned across operands).  Each operand first loses its repeated
labels (a diagonal: a strided view of the two dims flattened) and the labels no other
operand and not the output uses (a sum).  Then operands are contracted pairwise (opt_einsum's greedy
order when there are more than two), each pair as one batched GEMM: both are permuted to (batch, free, contracted) order, reshaped
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

    def view(x, lx, rows, cols):
        """x permuted to (batch, rows, cols), broadcast, as a (bsz, rows, cols) stack."""
        order = batch + rows + cols
        perm = [lx.index(lab) for lab in order]
        v = x.permute(*perm) if perm != list(range(len(lx))) else x
        target = [sizes[lab] for lab in order]
        if list(v.shape) != target:
            v = v.expand(*target)
        return v

    def arrange(x, lx, rows, cols):
        """x as a (bsz, rows, cols) matrix stack: a view in that order, or the transpose of
        a (bsz, cols, rows) view when only that one is contiguous (the GEMM takes a
        transposed operand as it is, where the other order would cost a copy)."""
        v = view(x, lx, rows, cols)
        if not v.is_contiguous():
            alt = view(x, lx, cols, rows)
            if alt.is_contiguous():
                return alt.reshape(bsz, _size(cols), _size(rows)).mT
        return v.reshape(bsz, _size(rows), _size(cols))

    def _size(labels):
        return math.prod(sizes[lab] for lab in labels)

    bsz = math.prod(sizes[lab] for lab in batch)
    A = arrange(a, la, a_free, summed)  # (bsz, m, k)
    B = arrange(b, lb, summed, b_free)  # (bsz, k, n)
    out = matmul(A, B)
    shape = [sizes[lab] for lab in batch + a_free + b_free]
    if list(out.shape) != shape:
        out = out.reshape(*shape)
    return out, batch + a_free + b_free


def _greedy_pair(xs: list, ls: list, keep_out: set) -> tuple:
    """The operand pair to contract next, by opt_einsum's greedy rule: the one whose
    result is smallest relative to its operands (size(result) - size(a) - size(b));
    ties go to the leftmost pair."""
    best, pair = None, (0, 1)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            sizes: dict = {}
            for x, lx in ((xs[i], ls[i]), (xs[j], ls[j])):
                for lab, n in zip(lx, x.shape):
                    sizes[lab] = max(sizes.get(lab, 1), n)
            rest = keep_out.union(*(ls[k] for k in range(len(ls)) if k not in (i, j)))
            shared = set(ls[i]) & set(ls[j])
            result = math.prod(n for lab, n in sizes.items() if lab not in shared or lab in rest)
            cost = result - xs[i].numel() - xs[j].numel()
            if best is None or cost < best:
                best, pair = cost, (i, j)
    return pair


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
    while len(xs) > 1:
        i, j = _greedy_pair(xs, ls, keep_out) if len(xs) > 2 else (0, 1)
        rest = {lab for k, ly in enumerate(ls) if k not in (i, j) for lab in ly}
        x, lx = _contract(xs[i], ls[i], xs[j], ls[j], keep_out | rest)
        xs = [x] + [t for k, t in enumerate(xs) if k not in (i, j)]
        ls = [lx] + [ly for k, ly in enumerate(ls) if k not in (i, j)]
    x, lx = xs[0], ls[0]
    x, lx = _sum_out(x, lx, keep_out)
    # ellipsis labels of the output that some operand had at size 1 only: already there
    missing = [lab for lab in out if lab not in lx]
    for lab in missing:  # a broadcast dim no operand has (all had fewer dims): size 1
        x = x.unsqueeze(-1)
        lx = lx + [lab]
    return x.permute(*[lx.index(lab) for lab in out]) if lx != out else x
