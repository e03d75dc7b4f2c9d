"""Views and in-place writes in the autograd graph (PyTorch's rules).

A view, made by a view op (view/reshape, permute/transpose, expand, basic slicing),
shares its base's memory and version counter.  The dispatcher records on each view how it
was derived from its *autograd base* -- the tensor at the root of the chain of view ops,
itself no view -- in ``Tensor._view``, a list::

    [fn, attrs, parent, no_grad, base, version]

- ``fn``, ``attrs``: the view op (a Function class) and its attributes: the chain's last link;
- ``parent``: the record of the view ``fn`` was applied to, None when that was the base;
- ``no_grad``: the view (or one it was made from) was made with grad mode off;
- ``base``: the autograd base;
- ``version``: the shared version counter's value when this view's grad_fn was last made.

Two rules use it (`tinyfw/ops/inplace.py` and the dispatcher call in here):

1. A recorded in-place write through a view rebases the **base's** history: the base's new
   grad_fn is a `CopySlices` node over (its old history, the written value).  Its backward
   gives the old history the gradient with the view's region zeroed, and the value the
   gradient's region: the chain replayed on the gradient.  The view's own grad_fn becomes
   "the chain replayed on the new base".
2. Other views of the base, made before the write, see it lazily: every write bumps the
   shared version counter, and a view whose recorded version is behind regenerates its
   grad_fn from its base's current history (`refresh`) before it is used by a recorded op,
   as a root of backward, or asked for ``requires_grad``/``is_leaf``.

As in PyTorch, a view made under ``no_grad`` may not take part in this: writing through it
with autograd recording, or using it after its base's history was rebased, is an error.
Recording the chain (rather than strides and an offset into the base's memory) needs no
backend function: replaying it runs the view ops themselves, on any device, on gradients
of any layout, and differentiably (double backward).
"""
from __future__ import annotations

from .function import Function, _GradModeContext

# the fields of a view record (see the module doc)
FN, ATTRS, PARENT, NO_GRAD, BASE, VERSION = range(6)


def chain(info: list) -> list:
    """The (fn, attrs) links of a view's chain, base side first."""
    links = []
    while info is not None:
        links.append((info[FN], info[ATTRS]))
        info = info[PARENT]
    links.reverse()
    return links


def replay(t, links: list, run):
    """The view op chain `links` (from `chain`) applied to `t` (a tensor of the base's
    shape), each op called as ``run(fn, (x,), attrs)``.  A reshape that the strides of `t`
    do not allow as a view becomes a copy: only the values (and the graph) are wanted."""
    from ..ops.shape import ReshapeCopy, View, _NotAView

    for fn, attrs in links:
        try:
            t = run(fn, (t,), attrs)
        except _NotAView:
            if fn is not View:
                raise
            t = run(ReshapeCopy, (t,), attrs)
    return t


def _run(fn, inputs, attrs):
    # bookkeeping replays bypass the interceptors: they are not the user's computation
    from ..dispatch import _run as run

    return run(fn, inputs, attrs)


def _apply(fn, inputs, attrs):
    from ..dispatch import apply

    return apply(fn, inputs, attrs)


def _regenerate(t) -> None:
    """Give view `t` the grad_fn of its chain replayed on its base's current history."""
    info = t._view
    with _GradModeContext(True):
        fresh = replay(info[BASE], chain(info), _run)
    t.grad_fn = fresh.grad_fn
    t._rg = True
    info[VERSION] = t._version[0]


def refresh(t) -> None:
    """Bring view `t`'s grad_fn up to date after writes into its base or another of its
    views (rule 2 of the module doc); a no-op for a tensor that is no view or is current."""
    info = t._view
    if info is None or info[VERSION] == t._version[0]:
        return
    if not info[BASE]._rg:  # the base has no history: nothing to take from it
        info[VERSION] = t._version[0]
        return
    if info[NO_GRAD]:
        raise RuntimeError(
            f"a view of shape {tuple(t.shape)} was made under no_grad, and its base (or "
            "another view of it) was modified in place since; using it with autograd is "
            "ambiguous and refused, as in PyTorch: make the view again outside no_grad, or "
            "clone() it")
    _regenerate(t)


def check_write(x, op: str) -> None:
    """Refuse a recorded in-place write through view `x` where PyTorch refuses it: into a
    view of a leaf that requires grad, and through a view made under no_grad."""
    info = x._view
    base = info[BASE]
    if base._rg and base.grad_fn is None:
        raise RuntimeError(
            f"{op}: a view of a leaf tensor that requires grad is used in an in-place "
            "operation; do it under tinyfw.no_grad() or use the out-of-place op")
    if info[NO_GRAD]:
        raise RuntimeError(
            f"{op}: the tensor is a view made under no_grad and is modified in place with "
            "autograd recording; this is ambiguous and refused, as in PyTorch: make the view "
            "outside no_grad, or write under no_grad")


def rebase(x, value) -> None:
    """View `x` was overwritten in place by `value` (a tensor of x's shape and dtype that
    requires grad, written with autograd recording): give x's base a `CopySlices` history
    and x the history of a view of it (rule 1 of the module doc)."""
    info = x._view
    base = info[BASE]
    node = CopySlices.__new__(CopySlices)
    node.next = ((base.grad_fn or base) if base._rg else None, value.grad_fn or value)
    # the links only, not the records: a record holds the base, whose grad_fn this node
    # becomes, and that cycle would keep the base's memory alive until a gc pass
    node.links = chain(info)
    base.grad_fn = node
    base._rg = True
    _regenerate(x)


class CopySlices(Function):
    """The history of a base after an in-place write through one of its views:
    new_base = old_base with the view's region replaced by the written value.  Made by
    `rebase` (never dispatched: the write itself already happened)."""

    links: list

    def backward(self, g):
        from ..creation import arange
        from ..dtypes import bool_
        from ..ops.elementwise import where
        from .function import no_grad

        region = replay(g, self.links, _apply)  # the value's gradient
        g_old = None
        if self.next[0] is not None:
            # the region's elements, found by replaying the chain on their flat positions
            # (by value, so a reshape that has to copy on this layout is still right)
            with no_grad():
                n = g.numel()
                ids = replay(arange(n, device=g.device).reshape(g.shape), self.links, _run)
                mask = g.new_zeros((n,), dtype=bool_)
                mask[ids.reshape(-1)] = True
            g_old = where(mask.reshape(g.shape), g.new_zeros(()), g)
        return g_old, region
