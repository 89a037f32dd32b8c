"""Evaluate: the trained model's metrics on the held-out test split."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tunepipe.features import PreprocessingSpec, model_inputs, targets
from tunepipe.metrics import classification_metrics, confusion_matrix, regression_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Test-split metrics, with the confusion matrix (rows: true class) for classification."""

    task: str
    rows: int
    metrics: dict[str, float]
    classes: list[str]
    confusion_matrix: list[list[int]]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        return cls(**json.loads(Path(path).read_text()))


def predict(model: keras.Model, frame: pd.DataFrame, spec: PreprocessingSpec) -> np.ndarray:
    """The trained model's outputs (class probabilities or values) for raw rows."""
    return np.asarray(model.predict(model_inputs(frame, spec), verbose=0, batch_size=1024))


def evaluate_model(model: keras.Model, test: pd.DataFrame, spec: PreprocessingSpec) -> Evaluation:
    """Scores ``model`` on ``test``: classification or regression metrics by ``spec.task``."""
    y_true = targets(test, spec)
    outputs = predict(model, test, spec)
    if spec.is_classification:
        scores = classification_metrics(y_true, outputs)
        matrix = confusion_matrix(y_true, outputs.argmax(axis=1), len(spec.classes)).tolist()
    else:
        scores, matrix = regression_metrics(y_true, outputs), []
    log.info("evaluate: %s", ", ".join(f"{name}={value:.4f}" for name, value in scores.items()))
    return Evaluation(spec.task, len(test), scores, list(spec.classes), matrix)
