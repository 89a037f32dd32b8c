"""Evaluation metrics as small numpy functions (no scikit-learn at run time).

Classification: accuracy, precision/recall/F1 per class and as macro and weighted averages,
ROC AUC (one-vs-rest macro for more than two classes) and log loss. Regression: MAE, RMSE,
R² and MAPE. Tests check them against scikit-learn as a reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunepipe.modelling.imbalance import predicted_ids

# Probabilities are clipped to [LOG_LOSS_EPSILON, 1] before the logarithm, so a confident
# wrong answer costs about 34.5 nats instead of infinity.
LOG_LOSS_EPSILON = 1e-15


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    return _weighted_confusion(_cells(y_true, y_pred, classes), classes, None)


def _cells(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Each row's cell of the confusion matrix, flattened: ``true * classes + predicted``."""
    return y_true.astype(np.int64) * classes + y_pred.astype(np.int64)


def _weighted_confusion(cells: np.ndarray, classes: int, weights: np.ndarray | None) -> np.ndarray:
    """The confusion matrix from :func:`_cells`, each row counted ``weights[row]`` times (int64 counts
    without weights)."""
    return np.bincount(cells, weights=weights, minlength=classes**2).reshape(classes, classes)


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
    return float(_row_log_losses(y_true, probabilities).mean())


def _row_log_losses(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    chosen = probabilities.astype(np.float64)[np.arange(len(y_true)), y_true.astype(int)]
    return -np.log(np.clip(chosen, LOG_LOSS_EPSILON, 1.0))


class _TiedScores:
    """One column of scores grouped into tied values, ascending: the AUC under any row weights
    then needs two weighted counts per group and no new sort."""

    def __init__(self, scores: np.ndarray) -> None:
        _, inverse = np.unique(scores, return_inverse=True)
        self.inverse = inverse.reshape(-1)
        self.groups = int(self.inverse.max()) + 1 if len(self.inverse) else 0

    def auc(self, positive: np.ndarray, weights: np.ndarray | None) -> float:
        """Area under the ROC curve: each positive's share of negatives scored below it, ties half."""
        pos_weights = positive if weights is None else positive * weights
        neg_weights = ~positive if weights is None else ~positive * weights
        pos = np.bincount(self.inverse, weights=pos_weights, minlength=self.groups)
        neg = np.bincount(self.inverse, weights=neg_weights, minlength=self.groups)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


class ClassificationScores:
    """Fixed predictions scored under any row weights.

    Every row once (``weights=None``) gives the test metrics; a bootstrap resample gives each
    row its count in the resample (:mod:`tunepipe.evaluation.bootstrap`). Both go through the
    same formulas, and the sorts ROC AUC needs are done once, here, not once per resample.

    Args:
        y_true: Class ids, ``[rows]``.
        probabilities: ``[rows, classes]``.
        decision: The binary decision rule train chose (:mod:`tunepipe.modelling.imbalance`);
            ``None`` (default): the most probable class is the prediction.
    """

    def __init__(self, y_true: np.ndarray, probabilities: np.ndarray, decision: dict[str, Any] | None = None) -> None:
        self.y_true = y_true.astype(np.int64)
        self.classes = probabilities.shape[1]
        self.y_pred = predicted_ids(probabilities, decision)
        self._cells = _cells(self.y_true, self.y_pred, self.classes)
        self._losses = _row_log_losses(self.y_true, probabilities)
        # binary: the second class's AUC; more classes: one-vs-rest for each
        columns = [1] if self.classes == 2 else list(range(self.classes))
        self._auc_columns = [(self.y_true == k, _TiedScores(probabilities[:, k].astype(np.float64)))
                             for k in columns]

    @property
    def rows(self) -> int:
        return len(self.y_true)

    def metrics(self, weights: np.ndarray | None = None, names: frozenset[str] | None = None) -> dict[str, float]:
        """Accuracy, macro and weighted precision/recall/F1, ROC AUC and log loss (see
        :func:`classification_metrics`), each row counted ``weights[row]`` times (default once).

        Args:
            weights: Row weights (bootstrap counts); ``None`` counts every row once.
            names: Compute only these metrics (default: all); ROC AUC is the costly one.
        """
        matrix = _weighted_confusion(self._cells, self.classes, weights)
        scores = per_class_scores(matrix)
        present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
        support = matrix.sum(axis=1).astype(float)
        class_weights = support / support.sum() if support.sum() else support
        result = {"accuracy": float(np.trace(matrix) / matrix.sum())}
        for name in ("precision", "recall", "f1"):
            result[name] = float(scores[name][present].mean())
        for name in ("precision", "recall", "f1"):
            result[f"{name}_weighted"] = float((scores[name] * class_weights).sum())
        if names is None or "roc_auc" in names:
            aucs = [tied.auc(positive, weights) for positive, tied in self._auc_columns]
            valid = [value for value in aucs if not np.isnan(value)]
            result["roc_auc"] = float(np.mean(valid)) if valid else float("nan")
        if names is None or "log_loss" in names:
            result["log_loss"] = float(np.average(self._losses, weights=weights))
        return result if names is None else {name: result[name] for name in names}


def binary_roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, ties counted as half (the rank-sum statistic); O(n log n)."""
    return _TiedScores(scores.astype(np.float64)).auc(positive.astype(bool), None)


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, macro and weighted precision/recall/F1, ROC AUC and log loss.

    ``precision``, ``recall`` and ``f1`` are macro averages: classes absent from both truth
    and prediction are left out. The ``*_weighted`` ones weight each class by its support
    (rows of that true class). ROC AUC is one-vs-rest, averaged over the classes present in
    ``y_true`` alongside at least one other class; for two classes it is the second class's.
    """
    return ClassificationScores(y_true, probabilities).metrics()


def per_class_table(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str],
                    decision: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per class: its name, precision, recall, F1 and support on these rows (predicted as
    ``decision`` names them; default: the most probable class)."""
    matrix = confusion_matrix(y_true, predicted_ids(probabilities, decision), len(class_names))
    scores = per_class_scores(matrix)
    return [
        {"class": name, **{key: float(scores[key][k]) for key in ("precision", "recall", "f1")},
         "support": int(scores["support"][k])}
        for k, name in enumerate(class_names)
    ]


class RegressionScores:
    """Fixed predictions of a regression scored under any row weights (see
    :class:`ClassificationScores`): MAE, RMSE, R² and MAPE as in :func:`regression_metrics`."""

    def __init__(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        self.y_true = y_true.astype(np.float64).ravel()
        self.errors = y_pred.astype(np.float64).ravel() - self.y_true
        nonzero = self.y_true != 0
        self._relative = np.where(nonzero, np.abs(self.errors / np.where(nonzero, self.y_true, 1.0)), 0.0)
        self._nonzero = nonzero.astype(np.float64)

    @property
    def rows(self) -> int:
        return len(self.y_true)

    def metrics(self, weights: np.ndarray | None = None, names: frozenset[str] | None = None) -> dict[str, float]:
        """The metrics with each row counted ``weights[row]`` times (default once); ``names``
        keeps only those (all four are cheap)."""
        w = np.ones(self.rows) if weights is None else weights.astype(np.float64)
        total = w.sum()
        squared = float((w * self.errors**2).sum())
        mean_true = (w * self.y_true).sum() / total
        spread = float((w * (self.y_true - mean_true) ** 2).sum())
        nonzero = float((w * self._nonzero).sum())
        result = {
            "mae": float((w * np.abs(self.errors)).sum() / total),
            "rmse": float(np.sqrt(squared / total)),
            "r2": 1.0 - squared / spread if spread > 0 else float("nan"),
            "mape": float((w * self._relative).sum() / nonzero) if nonzero > 0 else float("nan"),
        }
        return result if names is None else {name: result[name] for name in names}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² (1 - SSE / SST) and MAPE.

    MAPE is a fraction (0.05 means 5%) over the rows whose true value is not zero (a zero
    makes the percentage undefined); NaN when every true value is zero.
    """
    return RegressionScores(y_true, y_pred).metrics()
