"""tinyfw.einsum against torch.einsum: a table of equations three ways (tests/op_table.py),
random equations by hypothesis (forward and every operand's gradient, float64), and the
errors for malformed equations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from helpers import npy, torch
from op_table import KINDS, OpCase, case_id, check, normal


def _case(eq, *shapes, terms=1, **kw):
    return OpCase(f"einsum[{eq}]", lambda *a: tinyfw.einsum(eq, *a),
                  lambda *a: torch.einsum(eq, *a), normal(*shapes), terms=terms, **kw)


CASES = [
    _case("ij,jk->ik", (3, 4), (4, 5), terms=4, gradgrad=True),
    _case("ij,jk", (3, 4), (4, 5), terms=4),
    _case("bij,bjk->bik", (2, 3, 4), (2, 4, 5), terms=4),
    _case("bhqd,bhkd->bhqk", (2, 3, 4, 5), (2, 3, 6, 5), terms=5),
    _case("ii->i", (3, 3)),
    _case("ii", (4, 4), terms=4),
    _case("iij->j", (3, 3, 2), terms=3),
    _case("ijj,jk->ik", (2, 3, 3), (3, 4), terms=3, gradgrad=True),
    _case("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2), terms=4),
    _case("i...j,j...k->...ik", (2, 3, 4), (4, 3, 5), terms=4),
    _case("...ii->...i", (2, 3, 3)),
    _case("i,i->", (4,), (4,), terms=4),
    _case("i,j->ij", (3,), (4,)),
    _case("ijk->kji", (2, 3, 4)),
    _case("ijk->", (2, 3, 4), terms=24),
    _case("ij,jk,kl->il", (2, 3), (3, 4), (4, 5), terms=12, gradgrad=True),
    _case("ab,->ab", (2, 3), ()),
    _case("Ab,bA->", (3, 4), (4, 3), terms=12),
    _case("bn,anm,bm->ba", (2, 3), (4, 3, 5), (2, 5), terms=15),
    _case("i...->...", (2, 3, 4), terms=2),
    _case("ij,ij->ij", (3, 4), (3, 4)),
    _case("ij->", (0, 3)),
    _case("ij,jk->ik", (3, 0), (0, 2)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_einsum(case, kind):
    check(case, kind)


def test_operands_as_a_list():
    a, b = tinyfw.randn(2, 3), tinyfw.randn(3, 4)
    np.testing.assert_allclose(npy(tinyfw.einsum("ij,jk->ik", [a, b])), npy(a @ b))


LETTERS = "abcde"


@st.composite
def equations(draw):
    """A random equation over letters of random sizes (1 broadcasts nothing: letters keep
    one size), 1 to 3 operands with repeats (diagonals), implicit or explicit output."""
    sizes = {c: draw(st.integers(1, 3)) for c in LETTERS}
    n_ops = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from(LETTERS), max_size=4)) for _ in range(n_ops)]
    used = sorted({c for t in terms for c in t})
    if draw(st.booleans()):
        out = draw(st.permutations(used))
        out = out[:draw(st.integers(0, len(out)))]
        eq = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    else:
        eq = ",".join("".join(t) for t in terms)
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    return eq, shapes


@given(equations(), st.integers(0, 2 ** 16))
@settings(max_examples=60, deadline=None)
def test_random_equations_match_torch(eq_shapes, seed):
    _compare_with_torch(*eq_shapes, seed)


def _compare_with_torch(eq: str, shapes: list, seed: int) -> None:
    """Forward and every operand's gradient, float64, against torch.einsum."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    tf = [tinyfw.tensor(x, requires_grad=True) for x in xs]
    th = [torch.tensor(x, requires_grad=True) for x in xs]
    a, b = tinyfw.einsum(eq, *tf), torch.einsum(eq, *th)
    assert a.shape == tuple(b.shape), eq
    np.testing.assert_allclose(npy(a.detach()), b.detach().numpy(), rtol=1e-12, atol=1e-12,
                               err_msg=eq)
    g = rng.standard_normal(tuple(b.shape))
    (a * tinyfw.tensor(g)).sum().backward()
    (b * torch.tensor(g)).sum().backward()
    for x, y in zip(tf, th):
        np.testing.assert_allclose(npy(x.grad), y.grad.numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=eq)


@pytest.mark.parametrize("eq, shapes, pattern", [
    ("ij,jk->ik", [(2, 3)], "fewer operands"),
    ("ij->ij", [(2, 3), (3,)], "more operands"),
    ("ijk->i", [(2, 3)], "number of subscripts.*\\(3\\).*dimensions \\(2\\)"),
    ("i1->i", [(2, 3)], "subscripts must be in \\[a-zA-Z\\]"),
    ("ij->k", [(2, 3)], "output subscript k does not appear"),
    ("ij->ii", [(2, 3)], "appears more than once in the output"),
    ("ii->i", [(2, 3)], "repeated.*sizes don't match"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "do not broadcast"),
    ("i.j->i", [(2, 3)], "not part of any ellipsis"),
    ("ijk...->i", [(2, 3)], "more than the number of dimensions"),
])
def test_errors(eq, shapes, pattern):
    with pytest.raises(RuntimeError, match=pattern):
        tinyfw.einsum(eq, *[tinyfw.randn(*s) for s in shapes])


@st.composite
def ellipsis_equations(draw):
    """Two operands '...<letters>' whose broadcast dims have drawn shapes that broadcast
    (size 1 against n, missing leading dims), explicit output with or without '...'."""
    sizes = {c: draw(st.integers(1, 3)) for c in "ijk"}
    full = draw(st.lists(st.integers(1, 3), max_size=3))
    shapes, terms = [], []
    for _ in range(2):
        keep = draw(st.integers(0, len(full)))
        bshape = [n if draw(st.booleans()) else 1 for n in full[len(full) - keep:]]
        letters = draw(st.lists(st.sampled_from("ijk"), min_size=1, max_size=2, unique=True))
        terms.append("..." + "".join(letters))
        shapes.append(tuple(bshape) + tuple(sizes[c] for c in letters))
    used = sorted({c for t in terms for c in t if c != "."})
    out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
    eq = ",".join(terms) + "->" + (("..." + out) if draw(st.booleans()) else out)
    return eq, shapes


@given(ellipsis_equations(), st.integers(0, 2 ** 16))
@settings(max_examples=40, deadline=None)
def test_ellipsis_broadcasting_matches_torch(eq_shapes, seed):
    _compare_with_torch(*eq_shapes, seed)
