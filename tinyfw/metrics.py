"""Classification metrics, with scikit-learn's names, argument order and semantics.

Every function takes ``(y_true, y_pred)`` as tinyfw Tensors (on any device: their values
are read back to the host), numpy arrays or lists.
`y_pred` may be class labels (same shape as `y_true`) or scores/logits with one more
trailing dim of size n_classes, in which case the argmax is the prediction.  Scalars come
back as Python floats; per-class results (``average=None``) and the confusion matrix as
numpy arrays.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "precision", "recall", "f1_score", "precision_recall_fscore",
           "confusion_matrix", "scores_from_confusion", "top_k_accuracy"]


def _arr(x: Any, name: str, op: str) -> np.ndarray:
    if isinstance(x, Tensor):
        a = x.detach().cpu().numpy()
    else:
        a = np.asarray(x)
    if a.dtype.kind == "V" or str(a.dtype) == "bfloat16":
        a = a.astype(np.float32)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must be numeric, got dtype {a.dtype}")
    return a


def _labels(y_true, y_pred, op: str) -> tuple[np.ndarray, np.ndarray]:
    t, p = _arr(y_true, "y_true", op), _arr(y_pred, "y_pred", op)
    if p.ndim == t.ndim + 1:
        p = p.argmax(axis=-1)
    if t.shape != p.shape:
        raise ValueError(f"{op}: y_true has shape {t.shape} but y_pred has shape {p.shape} "
                         "(expected equal shapes, or y_pred with one extra class dim)")
    if t.dtype.kind == "f" and np.any(t != np.round(t)):
        raise ValueError(f"{op}: y_true must hold class labels, got non-integer values")
    return t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)


def accuracy(y_true, y_pred, normalize: bool = True) -> float:
    """Fraction (or, with normalize=False, count) of predictions equal to the labels."""
    t, p = _labels(y_true, y_pred, "accuracy")
    correct = int(np.sum(t == p))
    if not normalize:
        return float(correct)
    if t.size == 0:
        raise ValueError("accuracy: empty inputs")
    return correct / t.size


def confusion_matrix(y_true, y_pred, num_classes: int | None = None,
                     labels: list[int] | None = None, normalize: str | None = None) -> np.ndarray:
    """C[i, j] = number of samples of true class i predicted as j (rows: truth).

    Classes are `labels` if given, else 0..num_classes-1 if given, else the sorted labels
    present in either input (scikit-learn's default).  normalize: None, 'true' (rows sum to
    1), 'pred' (columns) or 'all'."""
    t, p = _labels(y_true, y_pred, "confusion_matrix")
    if labels is None:
        labels = (list(range(num_classes)) if num_classes is not None
                  else sorted(set(t.tolist()) | set(p.tolist())))
    labels = [int(v) for v in labels]
    pos = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    keep = np.array([a in pos and b in pos for a, b in zip(t.tolist(), p.tolist())], bool)
    ti = np.array([pos[v] for v in t[keep].tolist()], np.int64)
    pi = np.array([pos[v] for v in p[keep].tolist()], np.int64)
    cm = np.bincount(ti * k + pi, minlength=k * k).reshape(k, k) if k else np.zeros((0, 0),
                                                                                      np.int64)
    if normalize is None:
        return cm.astype(np.int64)
    if normalize not in ("true", "pred", "all"):
        raise ValueError(f"confusion_matrix: normalize must be None, 'true', 'pred' or 'all', "
                         f"got {normalize!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            out = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            out = cm / cm.sum(axis=0, keepdims=True)
        else:
            out = cm / cm.sum()
    return np.nan_to_num(out)


def _safe_div(num: np.ndarray, den: np.ndarray, zero_division, metric: str) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    ok = den != 0
    out[ok] = num[ok] / den[ok]
    if (~ok).any():
        if zero_division == "warn":
            warnings.warn(f"{metric} is ill-defined and being set to 0.0 in labels with no "
                          f"{'predicted' if metric == 'precision' else 'true'} samples; use "
                          "zero_division to control this", RuntimeWarning, stacklevel=4)
            fill = 0.0
        else:
            fill = float(zero_division)
        out[~ok] = fill
    return out


def precision_recall_fscore(y_true, y_pred, average: str | None = "binary",
                            pos_label: int = 1, labels: list[int] | None = None,
                            zero_division: str | float = "warn", beta: float = 1.0) -> tuple:
    """(precision, recall, F-beta) as scikit-learn's precision_recall_fscore_support.

    average: 'binary' (the `pos_label` class only), 'micro' (global counts), 'macro'
    (unweighted class mean), 'weighted' (mean weighted by class support) or None
    (per-class arrays).  zero_division: 'warn' (0 with a warning), 0, 1 or nan, used
    where a ratio has an empty denominator."""
    op = "precision_recall_fscore"
    if average not in ("binary", "micro", "macro", "weighted", None):
        raise ValueError(f"{op}: average must be 'binary', 'micro', 'macro', 'weighted' or "
                         f"None, got {average!r}")
    t, p = _labels(y_true, y_pred, op)
    present = sorted(set(t.tolist()) | set(p.tolist()))
    if average == "binary":
        if len(present) > 2 or any(v not in (0, 1, pos_label) for v in present):
            raise ValueError(f"{op}: average='binary' needs binary targets, found classes "
                             f"{present}; choose average='macro', 'micro' or 'weighted'")
        labels = [pos_label]
    elif labels is None:
        labels = present
    cm_labels = sorted(set(labels) | set(present))
    cm = confusion_matrix(t, p, labels=cm_labels)
    return scores_from_confusion(cm, [cm_labels.index(c) for c in labels], average,
                                 zero_division, beta)


def scores_from_confusion(cm: np.ndarray, classes: list[int] | None = None,
                          average: str | None = "macro", zero_division: str | float = "warn",
                          beta: float = 1.0) -> tuple:
    """(precision, recall, F-beta) from a confusion matrix (rows: truth, columns:
    prediction), over the rows/columns `classes` (default: all), averaged as in
    precision_recall_fscore ('binary' is one class given in `classes`).  Confusion
    matrices add up across data shards, so this gives the scores of a dataset split over
    several processes exactly (tinyfw.distributed.Trainer sums them across ranks)."""
    cm = np.asarray(cm)
    idx = list(range(cm.shape[0])) if classes is None else list(classes)
    tp = np.diag(cm)[idx].astype(np.float64)
    pred_pos = cm.sum(axis=0)[idx].astype(np.float64)
    true_pos = cm.sum(axis=1)[idx].astype(np.float64)
    if average == "micro":
        tp, pred_pos, true_pos = tp.sum(keepdims=True), pred_pos.sum(keepdims=True), \
            true_pos.sum(keepdims=True)
    prec = _safe_div(tp, pred_pos, zero_division, "precision")
    rec = _safe_div(tp, true_pos, zero_division, "recall")
    b2 = beta * beta
    # scikit-learn: F is computed from counts, 0/0 follows zero_division
    f_num = (1 + b2) * tp
    f_den = (1 + b2) * tp + b2 * (true_pos - tp) + (pred_pos - tp)
    f = _safe_div(f_num, f_den, zero_division if zero_division != "warn" else 0.0, "f-score")
    if average is None:
        return prec, rec, f
    if average == "weighted":
        w = true_pos
        if w.sum() == 0:
            zd = 0.0 if zero_division == "warn" else float(zero_division)
            return zd, zd, zd
    else:
        w = np.ones_like(prec)
    return _nanaverage(prec, w), _nanaverage(rec, w), _nanaverage(f, w)


def _nanaverage(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean ignoring NaN entries (zero_division=nan), as scikit-learn does."""
    ok = ~np.isnan(x)
    if not ok.any() or w[ok].sum() == 0:
        return float("nan") if not ok.any() else 0.0
    return float(np.average(x[ok], weights=w[ok]))


def precision(y_true, y_pred, average: str | None = "binary", pos_label: int = 1,
              labels: list[int] | None = None, zero_division: str | float = "warn"):
    """tp / (tp + fp) (see precision_recall_fscore for the arguments)."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[0]


def recall(y_true, y_pred, average: str | None = "binary", pos_label: int = 1,
           labels: list[int] | None = None, zero_division: str | float = "warn"):
    """tp / (tp + fn) (see precision_recall_fscore for the arguments)."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[1]


def f1_score(y_true, y_pred, average: str | None = "binary", pos_label: int = 1,
             labels: list[int] | None = None, zero_division: str | float = "warn"):
    """Harmonic mean of precision and recall (see precision_recall_fscore)."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[2]


def top_k_accuracy(y_true, y_score, k: int = 5, normalize: bool = True) -> float:
    """Fraction of samples whose true class is among the k highest scores.  Ties are
    broken as scikit-learn does (the lower class index ranks higher)."""
    op = "top_k_accuracy"
    t = _arr(y_true, "y_true", op).reshape(-1).astype(np.int64)
    s = _arr(y_score, "y_score", op)
    if s.ndim != 2 or s.shape[0] != t.size:
        raise ValueError(f"{op}: y_score must have shape (n_samples, n_classes) = ({t.size}, C),"
                         f" got {s.shape}")
    if not 1 <= k:
        raise ValueError(f"{op}: k must be >= 1, got {k}")
    if t.size and (t.min() < 0 or t.max() >= s.shape[1]):
        raise ValueError(f"{op}: labels must be in 0..{s.shape[1] - 1}, found "
                         f"{int(t.min())}..{int(t.max())}")
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = int(np.sum(np.any(order == t[:, None], axis=1)))
    return hits / t.size if normalize else float(hits)
