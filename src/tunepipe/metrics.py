"""Evaluation metrics as small numpy functions (no scikit-learn at run time)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(int), y_pred.astype(int)), 1)
    return matrix


def binary_roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties counted as half."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(sorted_scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, macro precision/recall/F1 and ROC AUC (one-vs-rest macro for >2 classes).

    Classes absent from both truth and prediction are left out of the macro averages; ROC AUC
    is averaged over the classes present in ``y_true`` alongside at least one other class.
    """
    classes = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, classes)
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    present = (predicted + actual) > 0
    precision = np.divide(true_pos, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros(classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0)
    if classes == 2:
        auc = binary_roc_auc(y_true == 1, probabilities[:, 1])
    else:
        aucs = [binary_roc_auc(y_true == k, probabilities[:, k]) for k in range(classes)]
        valid = [value for value in aucs if not np.isnan(value)]
        auc = float(np.mean(valid)) if valid else float("nan")
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
        "roc_auc": auc,
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Mean absolute error, root mean squared error and R² (1 - SSE / SST)."""
    y_true, y_pred = y_true.astype(np.float64).ravel(), y_pred.astype(np.float64).ravel()
    errors = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float((errors**2).sum()) / total if total > 0 else float("nan")
    return {
        "mae": float(np.abs(errors).mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "r2": r2,
    }
