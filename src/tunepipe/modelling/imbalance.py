"""Rare classes: class weights in the loss, and a binary decision threshold chosen on validation rows.

Two decisions, both only where the data report flags the label as imbalanced (the majority class
outnumbers the rarest ``cleaning.imbalance_ratio`` to 1 or more, 3 by default):

- **Class weights** (:func:`class_weights_for`, ``preprocessing.class_weights``, default on):
  each class weighs ``rows / (classes x rows of the class)`` in the training loss (scikit-learn's
  ``balanced``), so a class of 3% of the rows is not a rounding error to the optimiser. Decided
  by preprocess from the training split's counts and recorded in the specification, so tuning and
  training weigh alike. Not with ``augmentation.oversample``, which balances the rows already.
- **Decision threshold** (:func:`choose_decision`, ``training.decision_metric``, default ``f1``):
  for two classes, the rare class is predicted when its probability reaches a threshold chosen
  on the validation rows (which the early-stopped model did not train on) to maximise the named
  metric of the rare class (``f1``) or over both classes (``balanced_accuracy``, ``accuracy``);
  ``argmax`` keeps the most probable class. With fewer than :data:`MIN_POSITIVES` rare rows in
  validation no threshold can be told from noise, and the most probable class is kept.

A decision is a weight per class on the probabilities (:func:`predicted_ids`): the predicted class
is ``argmax(p * weights)``, which for two classes is ``p_rare >= threshold`` with weights
``(threshold, 1 - threshold)`` in the rare class's order. Everything that names a class
(evaluation, the SavedModel's ``predicted_class``, its verification) applies the same weights;
probabilities themselves are never changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunepipe.data.features import PreprocessingSpec

# Rare-class rows the validation split needs before a threshold is chosen on it: with fewer, one
# row moves the F1 of the rare class by 10 points or more, and the threshold would fit that noise.
MIN_POSITIVES = 10
DECISION_METRICS = ("f1", "balanced_accuracy", "accuracy", "argmax")


def class_weights_for(counts: Sequence[int], imbalanced: bool, enabled: bool = True,
                      oversampled: bool = False) -> list[float]:
    """Balanced class weights ``n / (k * n_c)`` for an imbalanced label; empty when none apply.

    Args:
        counts: Training rows per class, in the specification's class order.
        imbalanced: Whether the data report flags the label (``cleaning.imbalance_ratio``).
        enabled: ``preprocessing.class_weights`` (default true).
        oversampled: Whether ``augmentation.oversample`` balances the training rows already.
    """
    if not enabled or not imbalanced or oversampled or len(counts) < 2 or min(counts) <= 0:
        return []
    total, classes = float(sum(counts)), len(counts)
    return [total / (classes * count) for count in counts]


def class_weights(spec: PreprocessingSpec) -> list[float]:
    """The loss's class weights for ``spec`` (:func:`class_weights_for` of what preprocess recorded)."""
    if not spec.is_classification:
        return []
    return class_weights_for(spec.class_counts, spec.imbalanced, spec.weigh_classes,
                             bool(spec.augmentation.get("oversample", False)))


def with_decision(spec: PreprocessingSpec, trained: dict[str, Any] | None) -> PreprocessingSpec:
    """``spec`` with the decision rule train recorded in its description of the model (``decision``)."""
    decision = (trained or {}).get("decision")
    return dataclasses.replace(spec, decision=decision) if decision else spec


def _score(metric: str, positive: np.ndarray, predicted: np.ndarray) -> float:
    """``metric`` of the positive class's predictions (``f1`` of that class; accuracies over both)."""
    return float(_scores(metric, int(positive.sum()), len(positive), np.array([np.sum(positive & predicted)]),
                         np.array([predicted.sum()]))[0])


def _scores(metric: str, positives: int, rows: int, hits: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``metric`` for each cut, from its true positives ``hits`` and its ``predicted`` positives."""
    hits, predicted = hits.astype(np.float64), predicted.astype(np.float64)
    if metric == "f1":
        return np.divide(2 * hits, positives + predicted, out=np.zeros_like(hits), where=positives + predicted > 0)
    true_negatives = (rows - positives) - (predicted - hits)
    if metric == "accuracy":
        return (hits + true_negatives) / rows
    return 0.5 * (hits / max(positives, 1) + true_negatives / max(rows - positives, 1))


def best_threshold(positive: np.ndarray, probability: np.ndarray, metric: str) -> tuple[float, float]:
    """The threshold on ``probability`` (of the positive class) that maximises ``metric``, and its score.

    Every cut between two distinct probabilities is scored (one sort, cumulative counts); a cut's
    threshold is the midpoint of the two, and 0.5 (the plain argmax) is a candidate too. Ties go to
    the threshold closest to 0.5.
    """
    order = np.argsort(-probability, kind="stable")
    ranked, truth = probability[order], positive[order]
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # the last row of each distinct value
    hits, predicted = np.cumsum(truth)[last], last + 1
    following = np.append(ranked[last[:-1] + 1], -np.inf)  # the next lower probability after each cut
    thresholds = np.where(np.isfinite(following), (ranked[last] + following) / 2, ranked[last])
    at_half = probability >= 0.5
    thresholds = np.append(thresholds, 0.5)
    hits, predicted = np.append(hits, np.sum(positive & at_half)), np.append(predicted, at_half.sum())
    scores = _scores(metric, int(positive.sum()), len(positive), hits, predicted)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    chosen = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[chosen]), float(scores[chosen])


def choose_decision(y_true: np.ndarray, probabilities: np.ndarray, class_counts: Sequence[int], imbalanced: bool,
                    metric: str, classes: Sequence[str]) -> dict[str, Any] | None:
    """The binary decision rule chosen on validation rows, or ``None`` (the most probable class).

    Args:
        y_true: Validation class ids.
        probabilities: The model's validation probabilities, ``[rows, 2]``.
        class_counts: Training rows per class: the rarer one is the positive class.
        imbalanced: Whether the data report flags the label.
        metric: ``training.decision_metric``.
        classes: Class names, for the record.

    Returns:
        ``{"metric", "positive_class", "threshold", "weights", "validation_score",
        "validation_score_argmax", "validation_positives"}``, or ``None`` for more than two classes,
        a balanced label, ``argmax`` or too few rare rows to choose on.
    """
    if metric == "argmax" or not imbalanced or probabilities.shape[1] != 2 or len(class_counts) != 2:
        return None
    rare = int(np.argmin(class_counts))
    positive = np.asarray(y_true).reshape(-1) == rare
    if int(positive.sum()) < MIN_POSITIVES:
        return None
    probability = probabilities[:, rare].astype(np.float64)
    threshold, score = best_threshold(positive, probability, metric)
    weights = [0.0, 0.0]
    weights[rare], weights[1 - rare] = 1.0 - threshold, threshold
    return {"metric": metric, "positive_class": str(classes[rare]), "threshold": threshold, "weights": weights,
            "validation_score": score, "validation_score_argmax": _score(metric, positive, probability >= 0.5),
            "validation_positives": int(positive.sum())}


def predicted_ids(probabilities: np.ndarray, decision: dict[str, Any] | None) -> np.ndarray:
    """Class ids as the decision names them: ``argmax(p * weights)`` (no decision: ``argmax(p)``).

    Columns beyond the decision's weights (the evaluation's column of labels unseen in training,
    all zeros) weigh 1.
    """
    probabilities = np.asarray(probabilities)
    if not decision:
        return probabilities.argmax(axis=1)
    weights = np.ones(probabilities.shape[1])
    weights[: len(decision["weights"])] = decision["weights"]
    return (probabilities * weights).argmax(axis=1)
