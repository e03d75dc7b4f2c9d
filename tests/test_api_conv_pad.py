"""pad (constant with negative padding, reflect, replicate, circular), fold / unfold and the
pixel / channel shuffles (issue 16): the three-way table, hypothesis over pad widths and
fold geometry, edge cases and error messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, torch
from nn_check import compare
from op_table import KINDS, OpCase, case_id, check, normal

TF = torch.nn.functional if torch is not None else None


def _pad_case(mode: str, shape: tuple, pad: tuple, value=None) -> OpCase:
    kw = {} if value is None else {"value": value}
    return OpCase(f"pad_{mode}_{len(pad) // 2}d_{'_'.join(map(str, pad))}",
                  lambda x: F.pad(x, pad, mode=mode, **kw),
                  (lambda x: TF.pad(x, pad, mode=mode, **kw)) if torch else None, normal(shape))


CASES = [
    _pad_case("constant", (2, 3, 4), (2, -1)),
    _pad_case("constant", (2, 3, 4, 5), (-1, 2, 1, -2), value=1.5),
    _pad_case("constant", (2, 3, 4), (-1, -1, 0, 0, -1, 1)),
    _pad_case("reflect", (3, 5), (2, 3)),
    _pad_case("reflect", (2, 3, 4, 5), (1, 2, 3, 0)),
    _pad_case("reflect", (2, 3, 3, 4, 5), (1, 2, 2, 1, 0, 2)),
    _pad_case("reflect", (2, 3, 6), (2, -1)),
    _pad_case("replicate", (2, 3, 4), (3, 1)),
    _pad_case("replicate", (3, 4, 5), (2, 2, 0, 3)),
    _pad_case("replicate", (3, 2, 3, 4), (1, 0, 2, 1, 3, 1)),
    _pad_case("replicate", (2, 3, 4, 5), (-1, 2, 1, -2)),
    _pad_case("circular", (2, 3, 4), (4, 2)),
    _pad_case("circular", (2, 3, 4, 5), (1, 2, 3, 0)),
    _pad_case("circular", (1, 2, 3, 4, 5), (2, 1, 1, 3, 0, 2)),
    _pad_case("circular", (2, 3, 6), (2, -1)),
    OpCase("unfold", lambda x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
           (lambda x: TF.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)))
           if torch else None, normal((2, 3, 7, 8))),
    OpCase("unfold_unbatched", lambda x: F.unfold(x, 2),
           (lambda x: TF.unfold(x, 2)) if torch else None, normal((2, 4, 3))),
    OpCase("fold", lambda x: F.fold(x, (5, 6), (2, 2), padding=1),
           (lambda x: TF.fold(x, (5, 6), (2, 2), padding=1)) if torch else None,
           normal((2, 12, 42)), terms=4),
    OpCase("fold_strided_unbatched", lambda x: F.fold(x, (7, 5), 3, dilation=(2, 1), stride=2),
           (lambda x: TF.fold(x, (7, 5), 3, dilation=(2, 1), stride=2)) if torch else None,
           normal((18, 4)), terms=9),
    OpCase("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2),
           (lambda x: TF.pixel_shuffle(x, 2)) if torch else None, normal((2, 8, 3, 4))),
    OpCase("pixel_shuffle_5d", lambda x: F.pixel_shuffle(x, 3),
           (lambda x: TF.pixel_shuffle(x, 3)) if torch else None, normal((2, 1, 9, 2, 2))),
    OpCase("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 2),
           (lambda x: TF.pixel_unshuffle(x, 2)) if torch else None, normal((2, 2, 6, 4))),
    OpCase("channel_shuffle", lambda x: F.channel_shuffle(x, 3),
           (lambda x: TF.channel_shuffle(x, 3)) if torch else None, normal((2, 6, 3, 2))),
    # PyTorch's native_channel_shuffle has no derivative; its gradient is channel_shuffle's
    # (docs/semantics.md), and test_native_channel_shuffle_forward checks the values
    OpCase("native_channel_shuffle", lambda x: F.native_channel_shuffle(x, 2),
           (lambda x: TF.channel_shuffle(x, 2)) if torch else None, normal((2, 4, 5))),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
def test_native_channel_shuffle_forward():
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 2))
    np.testing.assert_array_equal(npy(F.native_channel_shuffle(tinyfw.tensor(x), 3)),
                                  TF.native_channel_shuffle(torch.tensor(x), 3).numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@settings(max_examples=40, deadline=None)
@given(data=st.data(), mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
       k=st.integers(1, 3))
def test_pad_widths_against_torch(data, mode, k):
    shape = tuple(data.draw(st.integers(1, 5)) for _ in range(k + data.draw(st.integers(1, 2))))
    pad = []
    for i in range(k):
        n = shape[-1 - i]
        if mode == "reflect":
            lo, hi = -(n - 1) // 2, n - 1
        elif mode == "circular":
            lo, hi = -(n - 1) // 2, n // 2
        else:
            lo, hi = -(n - 1) // 2, 3
        pad += [data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))]
    x = np.random.default_rng(0).standard_normal(shape)
    compare(lambda a: F.pad(a, tuple(pad), mode=mode),
            lambda a: TF.pad(a, tuple(pad), mode=mode), [x])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@settings(max_examples=25, deadline=None)
@given(k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       p=st.tuples(st.integers(0, 1), st.integers(0, 1)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       size=st.tuples(st.integers(3, 7), st.integers(3, 7)))
def test_fold_is_unfolds_adjoint_and_both_match_torch(k, s, p, d, size):
    assume(all(n + 2 * q >= e * (m - 1) + 1 for n, q, e, m in zip(size, p, d, k)))
    x = np.random.default_rng(0).standard_normal((2, 2) + size)
    kw = {"kernel_size": k, "dilation": d, "padding": p, "stride": s}
    compare(lambda a: F.unfold(a, **kw), lambda a: TF.unfold(a, **kw), [x])
    cols = TF.unfold(torch.tensor(x), **kw).numpy()
    compare(lambda a: F.fold(a, size, **kw), lambda a: TF.fold(a, size, **kw), [cols])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_passes_nan_and_inf_through(mode):
    x = np.array([[[np.nan, 1.0, np.inf, -np.inf]]])
    got = npy(F.pad(tinyfw.tensor(x), (2, 3), mode=mode))
    want = TF.pad(torch.tensor(x), (2, 3), mode=mode).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_of_integers_keeps_the_dtype(mode):
    x = np.arange(24).reshape(2, 3, 4)
    got = F.pad(tinyfw.tensor(x), (1, 2, 2, 0), mode=mode)
    want = TF.pad(torch.tensor(x), (1, 2, 2, 0), mode=mode)
    assert got.dtype == tinyfw.int64
    np.testing.assert_array_equal(npy(got), want.numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")
def test_empty_batch_and_empty_constant_pad():
    for mode in ("reflect", "replicate", "circular"):
        x = np.zeros((0, 2, 3))
        assert F.pad(tinyfw.tensor(x), (1, 1), mode=mode).shape == \
            tuple(TF.pad(torch.tensor(x), (1, 1), mode=mode).shape)
    x = np.zeros((2, 0, 3))
    assert F.pad(tinyfw.tensor(x), (1, 1, 2, 2)).shape == \
        tuple(TF.pad(torch.tensor(x), (1, 1, 2, 2)).shape)
    # cropping everything away leaves an empty dim, as PyTorch
    assert F.pad(tinyfw.ones(2, 3), (-2, -1)).shape == (2, 0)


def _t(*shape):
    return tinyfw.zeros(*shape)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.pad(_t(2, 3), (1,)), RuntimeError, r"pad: the padding length must be divisible by 2"),
    (lambda: F.pad(_t(3), (1, 1, 1, 1)), RuntimeError, r"pad: \(1, 1, 1, 1\) pads 2 dims but the input has 1"),
    (lambda: F.pad(_t(2, 3), (1, 1), mode="wrap"), NotImplementedError, r"pad: mode must be one of"),
    (lambda: F.pad(_t(2, 3), (-2, -2)), RuntimeError, r"pad: padding \(-2, -2\) of dim 1 \(size 3\) would give a negative size -1"),
    (lambda: F.pad(_t(2, 3), (3, 0), mode="reflect"), RuntimeError, r"reflect padding \(3, 0\) must be smaller than the size 3"),
    (lambda: F.pad(_t(2, 3), (4, 0), mode="circular"), RuntimeError, r"wrap around more than once"),
    (lambda: F.pad(_t(1, 2, 3, 4), (1, 1), mode="replicate"), NotImplementedError, r"mode 'replicate' with padding size 2 needs a 2-d or 3-d input"),
    (lambda: F.pad(_t(2, 0), (1, 1), mode="replicate"), RuntimeError, r"cannot pad the empty dim 1"),
    (lambda: F.pad(_t(2, 3), (1, 1), mode="reflect", value=2.0), ValueError, r"mode 'reflect' does not take a value"),
    (lambda: F.pad(_t(2, 3), (1.5, 1)), TypeError, r"pad: pad must be a tuple of ints"),
    (lambda: F.unfold(_t(2, 3), 2), NotImplementedError, r"unfold: only 3-d .* got shape \(2, 3\)"),
    (lambda: F.unfold(_t(1, 2, 3, 3), 4), RuntimeError, r"unfold: spatial size \(3, 3\) .* too small for kernel \(4, 4\)"),
    (lambda: F.fold(_t(1, 10, 4), (3, 3), 2), RuntimeError, r"fold: input \(1, 10, 4\): dim 1 \(10\) must be divisible by the kernel size product 4"),
    (lambda: F.fold(_t(1, 8, 5), (3, 3), 2), RuntimeError, r"fold: input \(1, 8, 5\) has 5 blocks but .* gives 2 \* 2 = 4"),
    (lambda: F.pixel_shuffle(_t(1, 3, 2, 2), 2), RuntimeError, r"pixel_shuffle: .* divisible by upscale_factor \*\* 2 = 4"),
    (lambda: F.pixel_shuffle(_t(1, 4, 2, 2), 0), ValueError, r"pixel_shuffle: upscale_factor must be a positive int"),
    (lambda: F.pixel_unshuffle(_t(1, 1, 3, 4), 2), RuntimeError, r"pixel_unshuffle: .* divisible by downscale_factor 2"),
    (lambda: F.channel_shuffle(_t(2, 5, 3), 2), RuntimeError, r"channel_shuffle: .* divisible by groups 2, got shape \(2, 5, 3\)"),
])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
