"""Evaluate: the trained model's metrics on the held-out test split.

Test rows whose label the model never learnt (a class absent from the training split, or
new in the data a champion is scored on) are kept and scored as errors: they join the
confusion matrix and the per-class table as one extra class, :data:`UNSEEN_CLASS`, to which
the model gives probability 0. Every model is so judged on the same rows, and accuracy is
not flattered by dropping the rows it cannot get right; their values and counts are
reported in ``unseen_labels``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tunepipe.data.features import PreprocessingSpec, class_ids_with_unseen, label_values, model_inputs
from tunepipe.data.split import Split
from tunepipe.evaluation.bootstrap import Scores, bootstrap_settings, metric_intervals
from tunepipe.evaluation.metrics import (
    ClassificationScores,
    RegressionScores,
    confusion_matrix,
    per_class_table,
    roc_curve,
    thin_roc_curve,
)
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

# The class name under which labels unseen in training are scored (never a folder or column value).
UNSEEN_CLASS = "(unseen in training)"
# Rows of a streamed test split encoded at a time, and rows per prediction batch.
PREDICT_ROWS, PREDICT_BATCH = 65_536, 1024


@dataclass(frozen=True)
class Evaluation:
    """Test-split metrics and what the Kubeflow UI and the report draw.

    ``confusion_matrix`` has true classes as rows; ``per_class`` holds precision, recall, F1
    and support of each class; ``roc_curve`` (binary tasks only) holds ``fpr``, ``tpr`` and
    ``thresholds`` (thinned to at most ``MAX_ROC_POINTS`` points); ``cross_validation`` is set
    for small datasets (see :mod:`tunepipe.evaluation.crossval`); ``intervals`` maps each metric
    to its 95 % bootstrap interval ``[low, high]``, computed as ``bootstrap`` records
    (:mod:`tunepipe.evaluation.bootstrap`).
    """

    task: str
    rows: int
    metrics: dict[str, float]
    classes: list[str]
    confusion_matrix: list[list[int]]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    roc_curve: dict[str, list[float]] | None = None
    cross_validation: dict[str, Any] | None = None
    unseen_labels: dict[str, int] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Scored:
    """An evaluation with the labels and outputs it was computed from (for the report), and
    those outputs ready to score again under resampled rows (for the intervals)."""

    evaluation: Evaluation
    y_true: np.ndarray
    outputs: np.ndarray
    scores: Scores

    def with_intervals(self, seed: int) -> Evaluation:
        """The evaluation with each metric's 95 % bootstrap interval, resamples seeded by ``seed``."""
        return dataclasses.replace(self.evaluation, intervals=metric_intervals(self.scores, seed),
                                   bootstrap=bootstrap_settings(self.evaluation.rows, seed))


def outputs_and_labels(test: Split, label: str, model: keras.Model,
                       feeds: Callable[[pd.DataFrame], dict[str, Any]]) -> tuple[np.ndarray, pd.DataFrame]:
    """``model``'s outputs on every test row (its inputs from ``feeds``) and the label column.

    The split decides how it is read (:meth:`~tunepipe.data.split.Split.inputs`): whole, or
    through ``tf.data`` where a generator encodes :data:`PREDICT_ROWS` rows at a time and TensorFlow
    batches and prefetches, so only the label column and the outputs are held (memory grows with
    the test rows times the outputs, not with the table's width).
    """
    inputs = test.inputs(feeds, PREDICT_BATCH, chunk_rows=PREDICT_ROWS)
    outputs = np.asarray(model.predict(inputs, verbose=0, batch_size=PREDICT_BATCH))
    return outputs, test.frame(columns=[label])


def _binary_roc(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, thresholds = thin_roc_curve(*roc_curve(y_true == 1, outputs[:, 1].astype(np.float64)))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}


def with_unseen(
    frame: pd.DataFrame, label: str, classes: list[str], probabilities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, int]]:
    """Class ids of ``frame[label]``, probabilities and class names for scoring, with unseen
    labels as one more class.

    Returns:
        ``(y_true, probabilities, names, unseen)``: when some labels are not in ``classes``,
        they get the id ``len(classes)``, the probabilities a zero column for it and the names
        :data:`UNSEEN_CLASS`, so that every metric counts those rows as errors; ``unseen``
        maps each such value to its row count (empty when there are none).
    """
    y_true, unseen = class_ids_with_unseen(frame, label, classes)
    if not unseen:
        return y_true, probabilities, list(classes), unseen
    padded = np.concatenate([probabilities, np.zeros((len(probabilities), 1), probabilities.dtype)], axis=1)
    return y_true, padded, [*classes, UNSEEN_CLASS], unseen


def _classification(test: pd.DataFrame, spec: PreprocessingSpec, outputs: np.ndarray) -> Scored:
    y_true, probabilities, names, unseen = with_unseen(test, spec.label, list(spec.classes), outputs)
    if unseen:
        log.warning("evaluate: %d test rows hold labels unseen in training, scored as errors: %s",
                    sum(unseen.values()), ", ".join(f"{value!r} ({count})" for value, count in unseen.items()))
    scores = ClassificationScores(y_true, probabilities, spec.decision)
    evaluation = Evaluation(
        spec.task, len(test), scores.metrics(), names,
        confusion_matrix(y_true, scores.y_pred, len(names)).tolist(),
        per_class=per_class_table(y_true, probabilities, names, spec.decision),
        roc_curve=_binary_roc(y_true, probabilities) if len(spec.classes) == 2 else None,
        unseen_labels=unseen,
    )
    return Scored(evaluation, y_true, probabilities, scores)


def evaluate_model(model: keras.Model, rows: Split, spec: PreprocessingSpec) -> Scored:
    """Scores ``model`` on the test split: classification or regression metrics by ``spec.task``
    (classes predicted by ``spec.decision``, train's decision rule, when it has one).

    Labels the model never learnt are scored as errors and listed (see :func:`with_unseen`).
    """
    outputs, test = outputs_and_labels(rows, spec.label, model, lambda chunk: model_inputs(chunk, spec))
    if spec.is_classification:
        scored = _classification(test, spec, outputs)
        evaluation = scored.evaluation
    else:
        y_true = label_values(test, spec)  # the model answers in the label's units (model.in_label_units)
        scores = RegressionScores(y_true, outputs)
        evaluation = Evaluation(spec.task, len(test), scores.metrics(), [], [])
        scored = Scored(evaluation, y_true, outputs, scores)
    log.info("evaluate: %s", ", ".join(f"{name}={value:.4f}" for name, value in evaluation.metrics.items()))
    return scored
