"""Evaluation metrics as small numpy functions (no scikit-learn at run time).

Classification: accuracy, precision/recall/F1 per class and as macro and weighted averages,
ROC AUC (one-vs-rest macro for more than two classes) and log loss. Regression: MAE, RMSE,
R² and MAPE. Tests check them against scikit-learn as a reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Probabilities are clipped to [LOG_LOSS_EPSILON, 1] before the logarithm, so a confident
# wrong answer costs about 34.5 nats instead of infinity.
LOG_LOSS_EPSILON = 1e-15


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(int), y_pred.astype(int)), 1)
    return matrix


def binary_roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties counted as half; O(n log n)."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    mean_rank = last_rank - (counts - 1) / 2.0  # tied scores share the mean of their ranks
    ranks = mean_rank[inverse.reshape(-1)]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score used as a threshold; O(n log n).

    Returns ``(fpr, tpr, thresholds)``, thresholds descending; the first point is (0, 0) at
    threshold ``max(scores) + 1`` (nothing predicted positive; a finite number, so that it
    survives JSON and the Kubeflow UI), the last is (1, 1).
    """
    positive = positive.astype(bool)
    if len(scores) == 0:
        return np.zeros(1), np.zeros(1), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], positive[order]
    last_of_each = np.append(np.flatnonzero(np.diff(ranked)), len(ranked) - 1)  # where a threshold ends
    n_pos, n_neg = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    tpr = np.concatenate([[0.0], np.cumsum(hits)[last_of_each] / n_pos])
    fpr = np.concatenate([[0.0], np.cumsum(~hits)[last_of_each] / n_neg])
    thresholds = ranked[last_of_each].astype(np.float64)
    return fpr, tpr, np.concatenate([[thresholds[0] + 1.0], thresholds])


# The most points of a stored ROC curve: the Kubeflow UI and the HTML report draw a few hundred at most.
MAX_ROC_POINTS = 200


def thin_roc_curve(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, max_points: int = MAX_ROC_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a ROC curve, first and last kept.

    Points on a straight segment between their neighbours are dropped first (they change
    nothing drawn); if more remain, the points kept are spread evenly along the curve's length
    (``fpr + tpr`` grows from 0 to 2 along it), so no drawn segment spans more than
    ``2 / (max_points - 1)`` of it. The AUC is computed from every row, never from this curve.
    """
    if len(fpr) > 2:
        bends = np.flatnonzero(np.logical_or(np.diff(fpr, 2), np.diff(tpr, 2))) + 1
        keep = np.concatenate([[0], bends, [len(fpr) - 1]])
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    if len(fpr) <= max_points:
        return fpr, tpr, thresholds
    length = fpr + tpr
    targets = np.linspace(0.0, length[-1], max_points)
    keep = np.unique(np.concatenate([[0], np.searchsorted(length, targets[1:-1]), [len(fpr) - 1]]))
    return fpr[keep], tpr[keep], thresholds[keep]


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from a confusion matrix (0 where undefined)."""
    classes = matrix.shape[0]
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros(classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(np.int64)}


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (natural log), probabilities clipped."""
    chosen = probabilities.astype(np.float64)[np.arange(len(y_true)), y_true.astype(int)]
    return float(-np.log(np.clip(chosen, LOG_LOSS_EPSILON, 1.0)).mean())


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    if probabilities.shape[1] == 2:
        return binary_roc_auc(y_true == 1, probabilities[:, 1])
    aucs = [binary_roc_auc(y_true == k, probabilities[:, k]) for k in range(probabilities.shape[1])]
    valid = [value for value in aucs if not np.isnan(value)]
    return float(np.mean(valid)) if valid else float("nan")


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, macro and weighted precision/recall/F1, ROC AUC and log loss.

    ``precision``, ``recall`` and ``f1`` are macro averages: classes absent from both truth
    and prediction are left out. The ``*_weighted`` ones weight each class by its support
    (rows of that true class). ROC AUC is one-vs-rest, averaged over the classes present in
    ``y_true`` alongside at least one other class; for two classes it is the second class's.
    """
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, probabilities.shape[1])
    scores = per_class_scores(matrix)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    support = scores["support"].astype(float)
    weights = support / support.sum() if support.sum() else support
    result = {"accuracy": float((y_pred == y_true).mean())}
    for name in ("precision", "recall", "f1"):
        result[name] = float(scores[name][present].mean())
    for name in ("precision", "recall", "f1"):
        result[f"{name}_weighted"] = float((scores[name] * weights).sum())
    result["roc_auc"] = _roc_auc(y_true, probabilities)
    result["log_loss"] = log_loss(y_true, probabilities)
    return result


def per_class_table(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """One row per class: its name, precision, recall, F1 and support on these rows."""
    matrix = confusion_matrix(y_true, probabilities.argmax(axis=1), len(class_names))
    scores = per_class_scores(matrix)
    return [
        {"class": name, **{key: float(scores[key][k]) for key in ("precision", "recall", "f1")},
         "support": int(scores["support"][k])}
        for k, name in enumerate(class_names)
    ]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² (1 - SSE / SST) and MAPE.

    MAPE is a fraction (0.05 means 5%) over the rows whose true value is not zero (a zero
    makes the percentage undefined); NaN when every true value is zero.
    """
    y_true, y_pred = y_true.astype(np.float64).ravel(), y_pred.astype(np.float64).ravel()
    errors = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float((errors**2).sum()) / total if total > 0 else float("nan")
    nonzero = y_true != 0
    mape = float(np.abs(errors[nonzero] / y_true[nonzero]).mean()) if nonzero.any() else float("nan")
    return {
        "mae": float(np.abs(errors).mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "r2": r2,
        "mape": mape,
    }
