"""The export and refusal steps over folders: the model card, publishing, the run's outcome.

Called by the export and record_refusal components through :mod:`tunepipe.steps`. Both
write ``outcome.json``, which the run summary reads: the model card of the published
version, or the refused decision with the numbers compared.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.preprocess import read_split
from tunepipe.evaluation.evaluate import UNSEEN_CLASS, Evaluation
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.publishing.export import export_model
from tunepipe.storage import atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportInputs:
    """The artifact folders export reads."""

    model: PathLike
    spec: PathLike
    test: PathLike
    evaluation: PathLike
    blessing: PathLike
    hyperparameters: PathLike
    history: PathLike
    cleaned: PathLike


def _read_json(folder: PathLike, name: str) -> Any:
    return json.loads((Path(folder) / name).read_text())


def _write_outcome(outcome_dir: PathLike, outcome: dict[str, Any]) -> None:
    folder = Path(outcome_dir)
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(folder / artifacts.OUTCOME_FILE, json.dumps(outcome, indent=2))


def model_card(inputs: ExportInputs, run: dict[str, str], report: str) -> dict[str, Any]:
    """The model card's fields from the run's artifacts (export adds version, signature, files).

    Args:
        inputs: The artifact folders.
        run: The pipeline run's ``id`` and ``name`` (KFP placeholders, resolved at run time).
        report: Where the evaluation's HTML report is (artifact URI).
    """
    schema = _read_json(inputs.cleaned, artifacts.SCHEMA_FILE)
    report_data = _read_json(inputs.cleaned, artifacts.DATA_REPORT_FILE)
    history = _read_json(inputs.history, artifacts.HISTORY_FILE)
    hyperparameters = load_hyperparameters(Path(inputs.hyperparameters) / artifacts.BEST_HYPERPARAMETERS_FILE)
    evaluation = Evaluation.load(Path(inputs.evaluation) / artifacts.EVALUATION_FILE)
    blessing = _read_json(inputs.blessing, artifacts.BLESSING_FILE)
    return {
        "task": schema["task"],
        "label": schema["label"],
        "classes": [name for name in evaluation.classes if name != UNSEEN_CLASS],  # what the model outputs
        "unseen_labels": evaluation.unseen_labels,
        "data": {"source": report_data.get("source"), "fingerprint": schema.get("fingerprint"), "rows": schema["rows"]},
        "schema": {key: schema[key] for key in ("numeric", "categorical", "features")},
        "cleaning": {key: value for key, value in report_data.items() if key != "source"},
        "hyperparameters": {k: v for k, v in hyperparameters.values.items() if not k.startswith("tuner/")},
        artifacts.META_EPOCHS: len(history["history"]["loss"]),
        artifacts.META_BEST_EPOCH: history[artifacts.META_BEST_EPOCH],
        "metrics": evaluation.metrics,
        "per_class": evaluation.per_class,
        "cross_validation": evaluation.cross_validation,
        "blessing": blessing,
        "forced_export": blessing["forced"],
        "pipeline_run": run,
        artifacts.META_REPORT: report,
    }


def export_step(
    inputs: ExportInputs, export_root: str, model_name: str, outcome_dir: PathLike, run: dict[str, str], report: str,
) -> dict[str, Any]:
    """Publishes the next model version; the outcome artifact repeats its model card.

    An empty ``export_root`` publishes into the outcome artifact itself (no champion there
    before this run, so thresholds alone decided).
    """
    card = model_card(inputs, run, report)
    model = keras.models.load_model(Path(inputs.model) / artifacts.MODEL_FILE)
    spec = PreprocessingSpec.load(Path(inputs.spec) / artifacts.PREPROCESSING_SPEC_FILE)
    if not export_root:
        Path(outcome_dir).mkdir(parents=True, exist_ok=True)
    published = export_model(model, spec, export_root or str(outcome_dir), model_name, card, read_split(inputs.test))
    outcome = {
        **published.card,
        artifacts.META_PUBLISHED: True,
        artifacts.META_EXPORT_PATH: published.location,
        artifacts.META_CHAMPION_VERSION: published.version,
    }
    _write_outcome(outcome_dir, outcome)
    return outcome


def record_refusal_step(
    evaluation_dir: PathLike, blessing_dir: PathLike, outcome_dir: PathLike, report: str = "",
) -> dict[str, Any]:
    """Writes the outcome of a run whose model was not published: the decision and its numbers."""
    evaluation = _read_json(evaluation_dir, artifacts.EVALUATION_FILE)
    blessing = _read_json(blessing_dir, artifacts.BLESSING_FILE)
    champion = blessing.get("champion")
    outcome = {
        artifacts.META_PUBLISHED: False,
        "task": evaluation["task"],
        "blessing": blessing,
        "metrics": evaluation["metrics"],
        "cross_validation": evaluation.get("cross_validation"),
        "unseen_labels": evaluation.get("unseen_labels", {}),
        artifacts.META_REPORT: report,
        artifacts.META_CHAMPION_VERSION: champion["version"] if champion else None,
    }
    _write_outcome(outcome_dir, outcome)
    log.info("export: skipped, the model was not blessed (%s)", blessing["reason"])
    return outcome
