"""The export step: the model card, publishing, the run's outcome.

It writes ``outcome.json``, which the run summary reads: the model card of the published
version (a refused run's outcome comes from :mod:`tunepipe.refusal_step` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.contract import StepResult
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.split import Split
from tunepipe.evaluation.evaluate import UNSEEN_CLASS, Evaluation
from tunepipe.modelling.imbalance import with_decision
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.publishing.export import export_model
from tunepipe.reports import modelcard
from tunepipe.reports.modelcard import render_markdown
from tunepipe.step_folders import output_folder, read_json, write_outcome

# Most test rows the SavedModel is verified on (the split's first; warm-up requests come from them too).
VERIFY_ROWS = 10_000


@dataclass(frozen=True)
class Inputs:
    """What export reads: the run's artifact folders, where to publish, and the run.

    Attributes:
        model, preprocessing, test_data, evaluation, blessing, best_hyperparameters, history,
            cleaned_data: The folders of the evaluated model and of what describes it.
        report: Where the evaluation's HTML report is (its URI, recorded in the card).
        export_root: Where versions are published; empty: into the outcome folder.
        model_name: The model's folder under ``export_root``.
        run_id, run_name: The pipeline run's (KFP placeholders, resolved at run time).
    """

    model: PathLike
    preprocessing: PathLike
    test_data: PathLike
    evaluation: PathLike
    blessing: PathLike
    best_hyperparameters: PathLike
    history: PathLike
    cleaned_data: PathLike
    report: str
    export_root: str
    model_name: str
    run_id: str
    run_name: str


@dataclass(frozen=True)
class Outputs:
    """The folder of ``outcome.json`` (and of the version, when ``export_root`` is empty) and the
    model card's Markdown file."""

    outcome: PathLike
    model_card: PathLike


def model_card(inputs: Inputs) -> dict[str, Any]:
    """The model card's fields from the run's artifacts (export adds version, signature, files)."""
    schema = read_json(inputs.cleaned_data, artifacts.SCHEMA_FILE)
    report_data = read_json(inputs.cleaned_data, artifacts.DATA_REPORT_FILE)
    history = read_json(inputs.history, artifacts.HISTORY_FILE)
    hyperparameters = load_hyperparameters(Path(inputs.best_hyperparameters) / artifacts.BEST_HYPERPARAMETERS_FILE)
    evaluation = Evaluation.load(Path(inputs.evaluation) / artifacts.EVALUATION_FILE)
    blessing = read_json(inputs.blessing, artifacts.BLESSING_FILE)
    chose = (Path(inputs.best_hyperparameters) / artifacts.TUNING_CHOICE_FILE).is_file()  # absent before issue 16
    sampled = (Path(inputs.best_hyperparameters) / artifacts.TUNING_SAMPLE_FILE).is_file()  # absent before issue 18
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
        modelcard.CARD_SERVING_COST: (read_json(inputs.best_hyperparameters, artifacts.TUNING_CHOICE_FILE)
                                      if chose else None),
        modelcard.CARD_TRAINED_MODEL: history.get(artifacts.HISTORY_MODEL),  # absent before issue 16
        modelcard.CARD_TUNING_SAMPLE: (read_json(inputs.best_hyperparameters, artifacts.TUNING_SAMPLE_FILE)
                                       if sampled else None),
        artifacts.META_EPOCHS: len(history["history"]["loss"]),
        artifacts.META_BEST_EPOCH: history[artifacts.META_BEST_EPOCH],
        modelcard.CARD_METRICS: evaluation.metrics,
        modelcard.CARD_METRIC_INTERVALS: evaluation.intervals,
        modelcard.CARD_PER_CLASS: evaluation.per_class,
        modelcard.CARD_CROSS_VALIDATION: evaluation.cross_validation,
        modelcard.CARD_BLESSING: blessing,
        modelcard.CARD_FORCED_EXPORT: blessing["forced"],
        modelcard.CARD_PIPELINE_RUN: {"id": inputs.run_id, "name": inputs.run_name},
        artifacts.META_REPORT: inputs.report,
    }


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Publishes the next model version; the outcome artifact repeats its model card, the model
    card output renders it as Markdown.

    An empty ``export_root`` publishes into the outcome folder itself (no champion there before
    this run, so thresholds alone decided).

    Returns:
        The outcome as the value; published, version and where on the outcome; the published
        version's folder as the ``published_model`` reference, with its version and model name.
    """
    card = model_card(inputs)
    model = keras.models.load_model(Path(inputs.model) / artifacts.MODEL_FILE)
    spec = PreprocessingSpec.load(Path(inputs.preprocessing) / artifacts.PREPROCESSING_SPEC_FILE)
    spec = with_decision(spec, card.get(modelcard.CARD_TRAINED_MODEL))  # predicted_class as evaluated
    if not inputs.export_root:
        Path(outputs.outcome).mkdir(parents=True, exist_ok=True)
    check_rows = Split.open(inputs.test_data).head(VERIFY_ROWS)  # shuffled (stratified) or in hash order: random
    published = export_model(model, spec, inputs.export_root or str(outputs.outcome), inputs.model_name, card,
                             check_rows)
    outcome = {
        **published.card,
        artifacts.META_PUBLISHED: True,
        artifacts.META_EXPORT_PATH: published.location,
        artifacts.META_CHAMPION_VERSION: published.version,
    }
    write_outcome(outputs.outcome, outcome)
    output_folder(Path(outputs.model_card).parent)
    Path(outputs.model_card).write_text(render_markdown(outcome))  # the published model_card.md's text
    where = {key: outcome[key] for key in (artifacts.META_VERSION, artifacts.META_EXPORT_PATH)}
    return StepResult(
        value=outcome,
        metadata={"outcome": {artifacts.META_PUBLISHED: True, **where},
                  "published_model": {artifacts.META_VERSION: outcome[artifacts.META_VERSION],
                                      "model_name": inputs.model_name, **where}},
        uris={"published_model": published.location},
    )
