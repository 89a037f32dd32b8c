"""k-fold cross-validation of the final configuration, for small datasets.

On a few hundred rows the test split's metrics move by several points with the seed, so for
datasets under ``cv_max_rows`` the evaluate step also refits the final configuration (the
same ``build_model(hp)``, the tuned hyperparameters, the trained number of epochs) on k-1
folds of train + validation and scores the held-out fold, and reports mean ± standard
deviation per metric. The preprocessing statistics stay those fitted on the training split
(baked into the model), so the validation rows' statistics leak into them slightly; the
estimate is about the configuration's variance, not a replacement for the test split.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.data.features import PreprocessingSpec, model_inputs, targets
from tunepipe.evaluation.metrics import classification_metrics, regression_metrics

log = logging.getLogger(__name__)


def fold_ids(frame: pd.DataFrame, spec: PreprocessingSpec, folds: int, seed: int) -> np.ndarray:
    """A fold number per row: seeded shuffle, stratified by class for classification."""
    rng = np.random.default_rng(seed)
    ids = np.empty(len(frame), dtype=np.int64)
    groups = (
        [np.flatnonzero(frame[spec.label].astype(str).to_numpy() == name) for name in spec.classes]
        if spec.is_classification else [np.arange(len(frame))]
    )
    offset = 0
    for members in groups:
        shuffled = rng.permutation(members)
        ids[shuffled] = (np.arange(len(shuffled)) + offset) % folds
        offset += len(shuffled)  # small classes do not all land in fold 0
    return ids


def cross_validate(
    hypermodel: keras_tuner.HyperModel,
    hyperparameters: keras_tuner.HyperParameters,
    frame: pd.DataFrame,
    spec: PreprocessingSpec,
    folds: int,
    epochs: int,
    seed: int,
) -> dict[str, Any]:
    """Fits ``folds`` models for ``epochs`` epochs each and scores every held-out fold.

    Returns:
        ``{"folds", "rows", "epochs", "metrics": {name: {"mean", "std", "values"}}}``; the
        standard deviation is the population one (ddof 0) over folds, NaN folds left out.
    """
    ids = fold_ids(frame, spec, folds, seed)
    scores: list[dict[str, float]] = []
    for fold in range(folds):
        keras.utils.set_random_seed(seed + fold)
        train, held_out = frame[ids != fold], frame[ids == fold]
        model = hypermodel.build(hyperparameters)
        hypermodel.fit(hyperparameters, model, model_inputs(train, spec), targets(train, spec),
                       epochs=epochs, verbose=0)
        outputs = np.asarray(model.predict(model_inputs(held_out, spec), verbose=0, batch_size=1024))
        y_true = targets(held_out, spec)
        scores.append(classification_metrics(y_true, outputs) if spec.is_classification
                      else regression_metrics(y_true, outputs))
        log.info("evaluate: cross-validation fold %d/%d done", fold + 1, folds)
    summary = {}
    for name in scores[0]:
        values = np.array([fold_scores[name] for fold_scores in scores], dtype=np.float64)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if len(finite) else float("nan"),
            "std": float(finite.std()) if len(finite) else float("nan"),
            "values": [float(v) for v in values],
        }
    return {"folds": folds, "rows": len(frame), "epochs": epochs, "metrics": summary}
