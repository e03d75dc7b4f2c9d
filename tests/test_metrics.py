"""Metrics against scikit-learn, and the PNG report helpers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from sklearn import metrics as skm

import tinyfw
from tinyfw import metrics


@st.composite
def _labels(draw, max_classes=5):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(2, max_classes))
    t = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return np.array(t), np.array(p)


@pytest.mark.filterwarnings("ignore:A single label was found")
@given(_labels())
def test_accuracy_and_confusion_matrix(tp):
    t, p = tp
    assert metrics.accuracy(tinyfw.tensor(t), tinyfw.tensor(p)) == pytest.approx(
        skm.accuracy_score(t, p), abs=1e-15)
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), skm.confusion_matrix(t, p))
    for norm in ("true", "pred", "all"):
        np.testing.assert_allclose(metrics.confusion_matrix(t, p, normalize=norm),
                                   skm.confusion_matrix(t, p, normalize=norm), atol=1e-15)


@given(_labels(), st.sampled_from(["macro", "micro", "weighted", None]),
       st.sampled_from([0.0, 1.0, np.nan]))
def test_precision_recall_f1_multiclass(tp, average, zd):
    t, p = tp
    for ours, theirs in ((metrics.precision, skm.precision_score),
                         (metrics.recall, skm.recall_score), (metrics.f1_score, skm.f1_score)):
        a = ours(t, p, average=average, zero_division=zd)
        b = theirs(t, p, average=average, zero_division=zd)
        np.testing.assert_allclose(a, b, atol=1e-12, equal_nan=True)


@given(_labels(), st.integers(1, 4), st.sampled_from(["macro", "micro", "weighted"]))
def test_scores_from_summed_confusion_matrices(tp, shards, average):
    # the distributed Trainer sums per-shard matrices: the scores must be the whole set's
    t, p = tp
    k = int(max(t.max(), p.max())) + 1
    cuts = np.linspace(0, len(t), shards + 1).astype(int)
    cm = sum(metrics.confusion_matrix(t[a:b], p[a:b], labels=list(range(k)))
             for a, b in zip(cuts[:-1], cuts[1:]))
    got = metrics.scores_from_confusion(cm, average=average, zero_division=0.0)
    want = skm.precision_recall_fscore_support(t, p, average=average, zero_division=0.0,
                                               labels=list(range(k)))[:3]
    np.testing.assert_allclose(got, want, atol=1e-12)


@given(_labels(max_classes=2), st.sampled_from([0, 1]), st.sampled_from([0.0, 1.0]))
def test_binary(tp, pos_label, zd):
    t, p = tp
    for ours, theirs in ((metrics.precision, skm.precision_score),
                         (metrics.recall, skm.recall_score), (metrics.f1_score, skm.f1_score)):
        a = ours(t, p, pos_label=pos_label, zero_division=zd)
        b = theirs(t, p, pos_label=pos_label, zero_division=zd)
        assert a == pytest.approx(b, abs=1e-12)


def test_zero_division_warns_like_sklearn():
    with pytest.warns(RuntimeWarning, match="precision is ill-defined"):
        assert metrics.precision([1, 1, 0], [0, 0, 0]) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.precision([1, 1, 0], [0, 0, 0], zero_division=1) == 1.0


def test_logits_and_top_k():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 6)).astype(np.float32)
    y = rng.integers(0, 6, 50)
    assert metrics.accuracy(y, tinyfw.tensor(scores)) == skm.accuracy_score(y, scores.argmax(1))
    for k in (1, 2, 3, 6):
        assert metrics.top_k_accuracy(y, scores, k=k) == pytest.approx(
            skm.top_k_accuracy_score(y, scores, k=k, labels=range(6)))
    with pytest.raises(ValueError, match=r"y_score must have shape .*\(50, C\)"):
        metrics.top_k_accuracy(y, scores[:10])


def test_errors():
    with pytest.raises(ValueError, match=r"accuracy: y_true has shape \(3,\) but y_pred has shape "
                                         r"\(2,\)"):
        metrics.accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="average='binary' needs binary targets"):
        metrics.f1_score([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="non-integer"):
        metrics.accuracy([0.5, 1.0], [0, 1])


def test_pngs(tmp_path):
    from tinyfw import plot

    cm = metrics.confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1])
    p1 = plot.confusion_matrix_png(cm, tmp_path / "cm.png", class_names=["a", "b", "c"],
                                   normalize=True)
    p2 = plot.curves_png({"train loss": [1.0, 0.5, 0.3], "test acc": [0.5, 0.8, 0.9]},
                         tmp_path / "curves.png")
    for p in (p1, p2):
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="square"):
        plot.confusion_matrix_png(np.zeros((2, 3)), tmp_path / "x.png")
