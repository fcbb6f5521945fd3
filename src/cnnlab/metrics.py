"""Evaluation metrics: a thin layer over scikit-learn that returns JSON-able values.

Nothing here re-implements a metric. The functions check shapes, call scikit-learn and
turn NumPy scalars and arrays into plain Python ``float``, ``int`` and ``list`` so the
result can go straight into ``metrics.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)


def as_probability_matrix(y_prob: np.ndarray) -> np.ndarray:
    """Return class probabilities as an ``(N, K)`` float64 array.

    A binary model with one sigmoid output gives ``(N,)`` or ``(N, 1)`` probabilities of
    the positive class; these become the two columns ``[1 - p, p]``.
    """
    probs = np.asarray(y_prob, dtype=np.float64)
    if probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1):
        positive = probs.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    if probs.ndim != 2:
        raise ValueError(f"y_prob must have shape (N, K); received shape {probs.shape}.")
    return probs


def _check_labels(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Return ``y_true`` as an int array after checking it matches ``probs`` (N, K)."""
    labels = np.asarray(y_true).reshape(-1)
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"y_true has {labels.shape[0]} labels but y_prob has {probs.shape[0]} rows."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(
            f"y_true holds labels outside 0..{probs.shape[1] - 1}, "
            f"the {probs.shape[1]} classes of y_prob."
        )
    return labels.astype(np.int64)


def roc_auc_ovr(y_true: np.ndarray, y_prob: np.ndarray) -> float | None:
    """Macro one-vs-rest ROC-AUC (``roc_auc_score``), or ``None`` where it is undefined.

    AUC is undefined when a class never occurs in ``y_true`` (it has no positives).
    With two classes, the score of the positive class (column 1) is used.
    """
    probs = as_probability_matrix(y_prob)
    labels = _check_labels(y_true, probs)
    n_classes = probs.shape[1]
    if np.unique(labels).size < n_classes:
        return None
    if n_classes == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    # sklearn insists that rows sum to 1; float32 softmax rows may miss by more than its tolerance.
    normalised = probs / probs.sum(axis=1, keepdims=True)
    score = roc_auc_score(
        labels, normalised, multi_class="ovr", average="macro", labels=list(range(n_classes))
    )
    return float(score)


def _per_class_rows(
    precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, support: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    """One JSON-able dict per class: class, precision, recall, f1, support."""
    return [
        {
            "class": name,
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k, name in enumerate(names)
    ]


def classification_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: list[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, ROC-AUC, confusion matrix and per-class scores.

    ``y_true``: ``(N,)`` integer labels; ``y_prob``: ``(N, K)`` class probabilities (a
    binary ``(N,)`` sigmoid output is accepted). The confusion matrix is ``K x K`` with
    true classes on rows, predicted on columns, even when a class is missing.
    ``roc_auc_ovr`` is ``None`` when a class is absent from ``y_true``.
    """
    probs = as_probability_matrix(y_prob)
    labels = _check_labels(y_true, probs)
    n_classes = probs.shape[1]
    names = _class_names(class_names, n_classes)
    predicted = probs.argmax(axis=1)
    classes = list(range(n_classes))
    per_class = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    macro = precision_recall_fscore_support(
        labels, predicted, labels=classes, average="macro", zero_division=0
    )
    return {
        "n_samples": int(labels.size),
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision_macro": float(macro[0]),
        "recall_macro": float(macro[1]),
        "f1_macro": float(macro[2]),
        "roc_auc_ovr": roc_auc_ovr(labels, probs),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "per_class": _per_class_rows(*per_class, names),
    }


def _class_names(class_names: list[str] | None, n_classes: int) -> list[str]:
    """The given names as strings, or "0", "1", ... when none are given."""
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but y_prob has {n_classes} classes."
        )
    return [str(name) for name in class_names]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Mean squared error, mean absolute error and R² of a regression (scikit-learn).

    Both arrays are flattened, so ``(N,)`` and ``(N, 1)`` can be compared.
    """
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    predicted = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(
            f"y_true has {truth.size} values but y_pred has {predicted.size}; they must match."
        )
    return {
        "mse": float(mean_squared_error(truth, predicted)),
        "mae": float(mean_absolute_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)),
    }


def agreement(prob_a: np.ndarray, prob_b: np.ndarray) -> dict[str, float]:
    """How closely two engines agree on the same inputs.

    ``same_prediction_share``: fraction of rows whose arg-max class is the same;
    ``max_abs_prob_diff``: the largest absolute difference between any two probabilities.
    """
    probs_a = as_probability_matrix(prob_a)
    probs_b = as_probability_matrix(prob_b)
    if probs_a.shape != probs_b.shape:
        raise ValueError(
            f"the two probability arrays differ in shape: {probs_a.shape} and {probs_b.shape}."
        )
    if probs_a.shape[0] == 0:
        raise ValueError("the probability arrays are empty; there is nothing to compare.")
    return {
        "same_prediction_share": float(accuracy_score(probs_a.argmax(1), probs_b.argmax(1))),
        "max_abs_prob_diff": float(np.abs(probs_a - probs_b).max()),
    }
