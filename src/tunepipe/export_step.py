"""The export step over folders: the model card, publishing, the run's outcome.

Called by the export component. It writes ``outcome.json``, which the run summary reads: the
model card of the published version (a refused run's outcome comes from
:mod:`tunepipe.refusal_step` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.split import Split
from tunepipe.evaluation.evaluate import UNSEEN_CLASS, Evaluation
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.publishing.export import export_model
from tunepipe.reports import modelcard
from tunepipe.step_folders import read_json, write_outcome

# Most test rows the SavedModel is verified on (the split's first; warm-up requests come from them too).
VERIFY_ROWS = 10_000


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


def model_card(inputs: ExportInputs, run: dict[str, str], report: str) -> dict[str, Any]:
    """The model card's fields from the run's artifacts (export adds version, signature, files).

    Args:
        inputs: The artifact folders.
        run: The pipeline run's ``id`` and ``name`` (KFP placeholders, resolved at run time).
        report: Where the evaluation's HTML report is (artifact URI).
    """
    schema = read_json(inputs.cleaned, artifacts.SCHEMA_FILE)
    report_data = read_json(inputs.cleaned, artifacts.DATA_REPORT_FILE)
    history = read_json(inputs.history, artifacts.HISTORY_FILE)
    hyperparameters = load_hyperparameters(Path(inputs.hyperparameters) / artifacts.BEST_HYPERPARAMETERS_FILE)
    evaluation = Evaluation.load(Path(inputs.evaluation) / artifacts.EVALUATION_FILE)
    blessing = read_json(inputs.blessing, artifacts.BLESSING_FILE)
    chose = (Path(inputs.hyperparameters) / artifacts.TUNING_CHOICE_FILE).is_file()  # absent before issue 16
    sampled = (Path(inputs.hyperparameters) / artifacts.TUNING_SAMPLE_FILE).is_file()  # absent before issue 18
    return {
        modelcard.CARD_TASK: schema["task"],
        modelcard.CARD_LABEL: schema["label"],
        modelcard.CARD_CLASSES: [name for name in evaluation.classes if name != UNSEEN_CLASS],  # what the model outputs
        modelcard.CARD_UNSEEN_LABELS: evaluation.unseen_labels,
        modelcard.CARD_DATA: {
            "source": report_data.get("source"), "fingerprint": schema.get("fingerprint"), "rows": schema["rows"],
        },
        modelcard.CARD_SCHEMA: {key: schema[key] for key in ("numeric", "categorical", "features")},
        modelcard.CARD_CLEANING: {key: value for key, value in report_data.items() if key != "source"},
        modelcard.CARD_HYPERPARAMETERS: {k: v for k, v in hyperparameters.values.items() if not k.startswith("tuner/")},
        modelcard.CARD_SERVING_COST: read_json(inputs.hyperparameters, artifacts.TUNING_CHOICE_FILE) if chose else None,
        modelcard.CARD_TRAINED_MODEL: history.get(artifacts.HISTORY_MODEL),  # absent before issue 16
        modelcard.CARD_TUNING_SAMPLE: (read_json(inputs.hyperparameters, artifacts.TUNING_SAMPLE_FILE)
                                       if sampled else None),
        artifacts.META_EPOCHS: len(history["history"]["loss"]),
        artifacts.META_BEST_EPOCH: history[artifacts.META_BEST_EPOCH],
        modelcard.CARD_METRICS: evaluation.metrics,
        modelcard.CARD_METRIC_INTERVALS: evaluation.intervals,
        modelcard.CARD_PER_CLASS: evaluation.per_class,
        modelcard.CARD_CROSS_VALIDATION: evaluation.cross_validation,
        modelcard.CARD_BLESSING: blessing,
        modelcard.CARD_FORCED_EXPORT: blessing["forced"],
        modelcard.CARD_PIPELINE_RUN: run,
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
    check_rows = Split.open(inputs.test).head(VERIFY_ROWS)  # shuffled (stratified) or in hash order: random
    published = export_model(model, spec, export_root or str(outcome_dir), model_name, card, check_rows)
    outcome = {
        **published.card,
        artifacts.META_PUBLISHED: True,
        artifacts.META_EXPORT_PATH: published.location,
        artifacts.META_CHAMPION_VERSION: published.version,
    }
    write_outcome(outcome_dir, outcome)
    return outcome
