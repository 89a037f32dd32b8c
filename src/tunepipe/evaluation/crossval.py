"""k-fold cross-validation of the final configuration, for small datasets.

On a few hundred rows the test split's metrics move by several points with the seed, so for
datasets under ``cv_max_rows`` the train step also fits the final configuration (the same
``build_model(hp)``, the tuned hyperparameters, the trained number of epochs) on k-1 folds of
train + validation and scores the held-out fold, and reports mean ± standard deviation per
metric; the k fold models then make the exported model (their average,
:mod:`tunepipe.modelling.ensemble`) unless ``training.small_data_model`` says otherwise. The copies
``augmentation.oversample`` makes of one row stay in one fold; exact duplicates the data holds are
rows like any other, as in the split. The preprocessing statistics stay
those fitted on the training split (baked into the model), so the validation rows' statistics
leak into them slightly; the estimate is about the configuration's variance, not a replacement
for the test split, which no fold sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.data.features import PreprocessingSpec, label_values, model_inputs, targets
from tunepipe.data.split import COPY_OF
from tunepipe.data.target import to_label_units
from tunepipe.evaluation.metrics import classification_metrics, regression_metrics

log = logging.getLogger(__name__)

# Runs a fold function on each fold's arguments and returns the results in fold order: in this
# process (:func:`one_after_another`, the default) or elsewhere (tunepipe.execution.folds, which
# the train step asks for the runner its evaluation.cv_placement names).
FoldRunner = Callable[[Callable[..., Any], Sequence[tuple[Any, ...]]], list[Any]]


def fold_done(fold: int, folds: int) -> None:
    """Logs that fold ``fold`` (0-based) of ``folds`` has its scores."""
    log.info("train: cross-validation fold %d/%d done", fold + 1, folds)


def one_after_another(task: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The folds one after another in this process: no second TensorFlow import to pay."""
    results = []
    for fold, fold_arguments in enumerate(arguments):
        results.append(task(*fold_arguments))
        fold_done(fold, len(arguments))
    return results


def cross_validation_frame(train: pd.DataFrame, validation: pd.DataFrame, spec: PreprocessingSpec) -> pd.DataFrame:
    """Train + validation rows, less validation rows of a class the training split lacks (a model
    built from the spec cannot be fitted on them)."""
    frame = pd.concat([train, validation], ignore_index=True)
    if spec.is_classification:
        known = frame[spec.label].astype(str).isin(spec.classes)
        if not known.all():
            log.info("train: cross-validation leaves out %d rows of classes unseen in training", int((~known).sum()))
            frame = frame[known].reset_index(drop=True)
    return frame


def copy_groups(frame: pd.DataFrame) -> np.ndarray:
    """Each row's group: the copies ``augmentation.oversample`` made of one row share one, every other
    row (natural duplicates included) has its own; groups are numbered in order of first appearance.

    Oversampling marks its copies (:data:`~tunepipe.data.split.COPY_OF`, on the training rows only);
    exact duplicates the data holds are observations, split as rows like any other, so the folds are
    drawn as the test split is.
    """
    if COPY_OF not in frame.columns:
        return np.arange(len(frame))
    marks = frame[COPY_OF].to_numpy(dtype=np.float64)
    keys = np.where(np.isnan(marks), -1.0 - np.arange(len(frame)), marks)  # unmarked rows: a key of their own
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def first_copies(frame: pd.DataFrame) -> np.ndarray:
    """True for each row that is the first of its :func:`copy_groups` group; False for the copies
    oversampling made (a held-out fold scores one copy of each row, as a test split holds it)."""
    groups = copy_groups(frame)
    seen = np.zeros(len(frame), dtype=bool)
    seen[np.unique(groups, return_index=True)[1]] = True
    return seen


def fold_ids(frame: pd.DataFrame, spec: PreprocessingSpec, folds: int, seed: int) -> np.ndarray:
    """A fold number per row: seeded shuffle, stratified by class for classification.

    The copies oversampling made of one row share its fold (:func:`copy_groups`), so that no row is
    both trained on and scored in the same fold; the folds are drawn over the groups, and each copy
    follows its row. Natural duplicates are rows of their own, drawn independently, as the test split
    draws them.
    """
    group = copy_groups(frame)
    first = np.unique(group, return_index=True)[1]  # group g's first row, g = 0, 1, ...
    distinct = frame.iloc[first]
    rng = np.random.default_rng(seed)
    group_fold = np.empty(len(distinct), dtype=np.int64)
    groups = (
        [np.flatnonzero(distinct[spec.label].astype(str).to_numpy() == name) for name in spec.classes]
        if spec.is_classification else [np.arange(len(distinct))]
    )
    offset = 0
    for members in groups:
        shuffled = rng.permutation(members)
        group_fold[shuffled] = (np.arange(len(shuffled)) + offset) % folds
        offset += len(shuffled)  # small classes do not all land in fold 0
    return group_fold[group]


def _fold_scores(
    hypermodel: keras_tuner.HyperModel, hyperparameters: keras_tuner.HyperParameters, frame: pd.DataFrame,
    ids: np.ndarray, scored: np.ndarray, spec: PreprocessingSpec, fold: int, epochs: int, seed: int,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Fits one model on every fold but ``fold`` and scores it on ``fold`` (seeded by the fold).

    The model trains on every copy of its rows (an oversampled class keeps its weight) and is
    scored on the held-out rows marked in ``scored`` (:func:`first_copies`: one of each row's
    oversampled copies),
    as a test split would hold them. Returns the scores and the model's weights (plain arrays,
    which cross a process boundary).
    """
    keras.utils.set_random_seed(seed + fold)
    train, held_out = frame[ids != fold], frame[(ids == fold) & scored]
    model = hypermodel.build(hyperparameters)
    hypermodel.fit(hyperparameters, model, model_inputs(train, spec), targets(train, spec),
                   epochs=epochs, verbose=0)
    outputs = to_label_units(np.asarray(model.predict(model_inputs(held_out, spec), verbose=0, batch_size=1024)),
                             spec.label_transform)
    y_true = label_values(held_out, spec)  # scored in the label's units, as the exported model is
    scores = classification_metrics(y_true, outputs) if spec.is_classification else regression_metrics(y_true, outputs)
    return scores, [np.asarray(value) for value in model.get_weights()]


def cross_validate(*arguments: Any, **keywords: Any) -> dict[str, Any]:
    """The summary of :func:`cross_validate_with_models` (same arguments), without the fold models."""
    return cross_validate_with_models(*arguments, **keywords)[0]


def cross_validate_with_models(
    hypermodel: keras_tuner.HyperModel,
    hyperparameters: keras_tuner.HyperParameters,
    frame: pd.DataFrame,
    spec: PreprocessingSpec,
    folds: int,
    epochs: int,
    seed: int,
    runner: FoldRunner = one_after_another,
) -> tuple[dict[str, Any], list[list[np.ndarray]]]:
    """Fits ``folds`` models for ``epochs`` epochs each and scores every held-out fold.

    Args:
        hypermodel: Builds and fits each fold's model (as in tuning and training).
        hyperparameters: The tuned values.
        frame: Train + validation rows.
        spec: The preprocessing spec (label, task, classes).
        folds: How many folds (at least 2).
        epochs: Epochs per fold model (the final training's best epoch; no early stopping).
        seed: Seeds the fold assignment and each fold's fit (``seed + fold``).
        runner: Where the folds run (default :func:`one_after_another`, in this process, which
            measured fastest on CPU); :func:`tunepipe.execution.folds.fold_runner` gives the one
            ``evaluation.cv_placement`` names. Each fold is seeded the same either way.

    Returns:
        The summary, ``{"folds", "rows", "epochs", "metrics": {name: {"mean", "std", "values"}}}``
        (the standard deviation is the population one, ddof 0, over folds, NaN folds left out),
        and each fold model's weights in fold order (the members of a bagged model:
        :mod:`tunepipe.modelling.ensemble`).
    """
    ids, scored = fold_ids(frame, spec, folds, seed), first_copies(frame)

    arguments = [(hypermodel, hyperparameters, frame, ids, scored, spec, fold, epochs, seed) for fold in range(folds)]
    fitted = runner(_fold_scores, arguments)
    scores = [fold_scores for fold_scores, _ in fitted]
    summary = {}
    for name in scores[0]:
        values = np.array([fold_scores[name] for fold_scores in scores], dtype=np.float64)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if len(finite) else float("nan"),
            "std": float(finite.std()) if len(finite) else float("nan"),
            "values": [float(v) for v in values],
        }
    return {"folds": folds, "rows": len(frame), "epochs": epochs, "metrics": summary}, [w for _, w in fitted]
