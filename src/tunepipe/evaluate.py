"""Evaluate: the trained model's metrics on the held-out test split."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tunepipe import atomic
from tunepipe.features import PreprocessingSpec, model_inputs, targets
from tunepipe.metrics import (
    classification_metrics,
    confusion_matrix,
    per_class_table,
    regression_metrics,
    roc_curve,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Test-split metrics and what the Kubeflow UI and the report draw.

    ``confusion_matrix`` has true classes as rows; ``per_class`` holds precision, recall, F1
    and support of each class; ``roc_curve`` (binary tasks only) holds ``fpr``, ``tpr`` and
    ``thresholds``; ``cross_validation`` is set for small datasets (see :mod:`tunepipe.crossval`).
    """

    task: str
    rows: int
    metrics: dict[str, float]
    classes: list[str]
    confusion_matrix: list[list[int]]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    roc_curve: dict[str, list[float]] | None = None
    cross_validation: dict[str, Any] | None = None

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Scored:
    """An evaluation with the labels and outputs it was computed from (for the report)."""

    evaluation: Evaluation
    y_true: np.ndarray
    outputs: np.ndarray


def predict(model: keras.Model, frame: pd.DataFrame, spec: PreprocessingSpec) -> np.ndarray:
    """The trained model's outputs (class probabilities or values) for raw rows."""
    return np.asarray(model.predict(model_inputs(frame, spec), verbose=0, batch_size=1024))


def _binary_roc(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, thresholds = roc_curve(y_true == 1, outputs[:, 1].astype(np.float64))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}


def evaluate_model(model: keras.Model, test: pd.DataFrame, spec: PreprocessingSpec) -> Scored:
    """Scores ``model`` on ``test``: classification or regression metrics by ``spec.task``."""
    y_true = targets(test, spec)
    outputs = predict(model, test, spec)
    if spec.is_classification:
        evaluation = Evaluation(
            spec.task, len(test), classification_metrics(y_true, outputs), list(spec.classes),
            confusion_matrix(y_true, outputs.argmax(axis=1), len(spec.classes)).tolist(),
            per_class=per_class_table(y_true, outputs, list(spec.classes)),
            roc_curve=_binary_roc(y_true, outputs) if len(spec.classes) == 2 else None,
        )
    else:
        evaluation = Evaluation(spec.task, len(test), regression_metrics(y_true, outputs), [], [])
    log.info("evaluate: %s", ", ".join(f"{name}={value:.4f}" for name, value in evaluation.metrics.items()))
    return Scored(evaluation, y_true, outputs)
