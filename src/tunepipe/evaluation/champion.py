"""The current champion: find it through its pointer, check it, and score it on new rows.

The evaluate step reads ``<export_root>/<model_name>/CHAMPION``, checks the model card's
SHA-256 against the pointer and ``model.keras``'s against the card, loads that serving model
(raw inputs) and scores it on the same raw test split as the candidate, row by row, so the
comparison is like for like and paired (:mod:`tunepipe.evaluation.bootstrap`). An empty
export root (the pipeline's default: publish into the run's own artifact) has no champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.config.thresholds import MAIN_METRIC
from tunepipe.data.features import PreprocessingSpec, raw_inputs
from tunepipe.data.split import Split
from tunepipe.errors import ExportError
from tunepipe.evaluation.blessing import ChampionComparison, compare_with_champion
from tunepipe.evaluation.bootstrap import Scores, paired_difference
from tunepipe.evaluation.evaluate import outputs_and_labels, with_unseen
from tunepipe.evaluation.metrics import ClassificationScores, RegressionScores
from tunepipe.publishing import layout
from tunepipe.publishing.champion_card import read_champion_card
from tunepipe.publishing.publish import Champion
from tunepipe.reports import modelcard
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.objectstore import ObjectStore
from tunepipe.storage.stores import parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedChampion:
    """The champion's pointer, model card and serving model."""

    pointer: Champion
    card: dict[str, Any]
    model: keras.Model


def _check_model(path: Path, card: dict[str, Any], where: str) -> None:
    relative = layout.keras_model_path(card)
    expected = card.get(modelcard.CARD_FILES, {}).get(relative, {}).get("sha256")
    if expected != sha256_file(path):
        raise ExportError(f"{where}: {relative} does not match its model card's checksum")


def load_champion(export_root: str, model_name: str, workdir: Path, store: ObjectStore | None = None
                  ) -> LoadedChampion | None:
    """The current champion of ``model_name``, or ``None`` when there is none yet.

    Versions of either layout (:mod:`tunepipe.publishing.layout`) are read.

    Args:
        export_root: Local folder or object-store URI (``gs://``, ``s3://``); empty means no champion.
        model_name: The model's folder name.
        workdir: Scratch folder for a downloaded ``model.keras``.
        store: Object store for a remote root (default: :func:`tunepipe.storage.stores.store_for`,
            with the environment's credentials).

    Raises:
        ExportError: The pointer, card or model is unreadable or fails its checksum.
    """
    found = read_champion_card(export_root, model_name, store)
    if found is None:
        return None
    pointer, card, location = found.pointer, found.card, found.location
    if found.store is not None:
        model_path = workdir / artifacts.MODEL_FILE
        found.store.download_file(
            f"{parse(location).prefix}/{pointer.version}/{layout.keras_model_path(card)}", model_path)
    else:
        model_path = Path(location) / str(pointer.version) / layout.keras_model_path(card)
    _check_model(model_path, card, f"{location}/{pointer.version}")
    return LoadedChampion(pointer, card, keras.models.load_model(model_path))


def _feeds(test: pd.DataFrame, model: keras.Model, signature: dict[str, Any], spec: PreprocessingSpec
           ) -> dict[str, Any]:
    """The champion's Keras inputs: images as pixels, other inputs ``[rows, 1]`` from their card columns."""
    import tensorflow as tf  # the serving model takes string tensors, which numpy arrays cannot carry

    feeds = {}
    for tensor in model.inputs:
        name = tensor.name
        if len(tensor.shape) == 4:  # an image model: it resizes whatever pixels it gets
            if spec.image is None:
                raise ValueError("it takes images, and this test split holds a table")
            feeds[name] = tf.constant(raw_inputs(test, spec)[spec.image.input_name])
            continue
        described = signature["inputs"].get(name)
        if described is None:
            raise KeyError(f"its input {name!r} is not in its model card's signature")
        if described["column"] not in test.columns:
            raise KeyError(f"it needs column {described['column']!r}, which the test split lacks")
        column = test[described["column"]]
        values = (column.astype(str).to_numpy().reshape(-1, 1) if described["dtype"] == "string"
                  else column.to_numpy(np.float32).reshape(-1, 1))
        feeds[name] = tf.constant(values)
    return feeds


def champion_scores(champion: LoadedChampion, rows: Split, spec: PreprocessingSpec) -> Scores:
    """The champion's outputs on the raw test split (its own classes, inputs and outputs), ready to
    score; ``spec`` is the candidate's, which names the task and label and decodes images.

    Raises:
        KeyError, ValueError: The champion cannot be scored on these rows (other task, a
            missing column). Labels it never learnt are scored as its errors, as the
            candidate's are (:func:`tunepipe.evaluation.evaluate.with_unseen`).
    """
    card, task, label = champion.card, spec.task, spec.label
    card_task, card_label = card.get(modelcard.CARD_TASK), card.get(modelcard.CARD_LABEL)
    if card_task != task or card_label != label:
        raise ValueError(f"it predicts {card_task} of {card_label!r}, not {task} of {label!r}")
    signature = card[modelcard.CARD_SIGNATURE]
    outputs, test = outputs_and_labels(rows, label, champion.model,
                                       lambda chunk: _feeds(chunk, champion.model, signature, spec))
    if task == "regression":
        return RegressionScores(test[label].to_numpy(np.float64), outputs)
    y_true, probabilities, _, unseen = with_unseen(test, label, card[modelcard.CARD_CLASSES], outputs)
    if unseen:
        log.warning("evaluate: %d test rows hold labels champion never learnt, scored as its errors: %s",
                    sum(unseen.values()), sorted(unseen))
    return ClassificationScores(y_true, probabilities)


def compare(
    candidate: Scores, champion: LoadedChampion, test: Split, spec: PreprocessingSpec, margin: float,
    rule: str, seed: int,
) -> ChampionComparison:
    """Scores the champion on ``test`` (the rows ``candidate`` was scored on, in the same order)
    and decides by ``rule`` from the paired bootstrap of the main metric's difference, seeded
    by ``seed``; a champion that cannot be scored fails."""
    version, metric = champion.pointer.version, MAIN_METRIC[spec.task]
    mine = candidate.metrics()
    try:
        theirs = champion_scores(champion, test, spec)
    except (KeyError, ValueError) as error:
        message = (str(error.args[0]) if error.args else repr(error))[:300]  # never a dump of the data
        log.warning("evaluate: champion version %d could not be scored: %s", version, message)
        return ChampionComparison(version, metric, float(mine[metric]), float("nan"), margin, False, {}, message, rule)
    paired = paired_difference(candidate, theirs, metric, seed)
    return compare_with_champion(mine, theirs.metrics(), paired, version, margin, rule)
