"""The evaluate step: metrics, champion, blessing, report.

Everything the blessing compares is computed here, in one step, on one test split: the
candidate's metrics and the current champion's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import EvaluationConfig
from tunepipe.config.thresholds import validate_thresholds
from tunepipe.contract import StepResult
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.split import Split
from tunepipe.evaluation.blessing import Blessing, ChampionComparison, bless
from tunepipe.evaluation.bootstrap import Scores
from tunepipe.evaluation.champion import compare, load_champion
from tunepipe.evaluation.evaluate import Evaluation, evaluate_model
from tunepipe.modelling.imbalance import with_decision
from tunepipe.reports.report import build_report
from tunepipe.step_folders import output_folder
from tunepipe.storage import atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What evaluate reads.

    Attributes:
        model: Train's model folder.
        test_data: The test split's folder.
        preprocessing: The preprocessing specification's folder.
        history: Train's history folder (with the cross-validation's scores on small data).
        evaluation_settings: The evaluation section: thresholds, force_export, champion rule and
            margin (named apart from the evaluation output).
        export_root: Where the champion pointer lives; empty means no champion.
        model_name: The model's folder name under ``export_root``.
        seed: Seeds the bootstrap resamples of the intervals and of the champion comparison.
    """

    model: PathLike
    test_data: PathLike
    preprocessing: PathLike
    history: PathLike
    evaluation_settings: EvaluationConfig
    export_root: str
    model_name: str
    seed: int


@dataclass(frozen=True)
class Outputs:
    """Where evaluate writes: folders for the evaluation and the blessing, and the report's
    file itself (a KFP HTML artifact is one file, which the Kubeflow UI renders)."""

    evaluation: PathLike
    blessing: PathLike
    report: PathLike


def _cross_validation(history: PathLike) -> dict[str, Any] | None:
    """The train step's cross-validation summary (small data only), or None."""
    path = Path(history) / artifacts.CROSS_VALIDATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _champion(
    candidate: Scores, test: Split, spec: PreprocessingSpec, export_root: str, model_name: str,
    config: EvaluationConfig, seed: int,
) -> ChampionComparison | None:
    with tempfile.TemporaryDirectory(prefix="tunepipe-champion-") as scratch:
        champion = load_champion(export_root, model_name, Path(scratch))
        if champion is None:
            log.info("evaluate: no champion under %r yet", export_root)
            return None
        return compare(candidate, champion, test, spec, config.champion_margin, config.champion_rule, seed)


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Scores the model, adds train's cross-validation, compares with the champion, decides.

    Returns:
        Whether to publish (blessed, or force_export) as the value; the UI metrics
        (:func:`ui_metrics`), the confusion matrix and the ROC curve (binary tasks); each metric
        with its interval ends on the evaluation, the decision on the blessing.
    """
    config, seed = inputs.evaluation_settings, inputs.seed
    spec = PreprocessingSpec.load(Path(inputs.preprocessing) / artifacts.PREPROCESSING_SPEC_FILE)
    validate_thresholds(config.thresholds, spec.task)
    test = Split.open(inputs.test_data)
    history = _read_history(inputs.history)
    spec = with_decision(spec, history.get(artifacts.HISTORY_MODEL))
    scored = evaluate_model(keras.models.load_model(Path(inputs.model) / artifacts.MODEL_FILE), test, spec)
    evaluation = dataclasses.replace(scored.with_intervals(seed), cross_validation=_cross_validation(inputs.history))
    champion = _champion(scored.scores, test, spec, inputs.export_root, inputs.model_name, config, seed)
    decision = bless(evaluation.metrics, config.thresholds, spec.task, config.force_export, champion)
    evaluation.save(output_folder(outputs.evaluation) / artifacts.EVALUATION_FILE)
    decision.save(output_folder(outputs.blessing) / artifacts.BLESSING_FILE)
    report = build_report(
        f"{inputs.model_name}: {spec.task} of {spec.label!r}", dataclasses.asdict(evaluation), history["history"],
        decision.to_dict(), scored.y_true, scored.outputs,
    )
    output_folder(Path(outputs.report).parent)
    atomic.write_text(outputs.report, report)
    log.info("evaluate: %s, %s", "blessed" if decision.blessed else "not blessed", decision.reason)
    return _result(evaluation, decision)


def _result(evaluation: Evaluation, decision: Blessing) -> StepResult:
    """What the Kubeflow UI shows of an evaluation and its decision."""
    logged = ui_metrics(evaluation, decision)
    ends = ("", artifacts.META_CI_LOW, artifacts.META_CI_HIGH)
    shown = [name + end for name in evaluation.metrics for end in ends]
    return StepResult(
        value=decision.publish,
        metadata={"evaluation": {key: logged[key] for key in shown if key in logged},
                  "blessing": {artifacts.META_BLESSED: decision.blessed, artifacts.META_PUBLISHED: decision.publish}},
        metrics={"metrics": logged},
        confusion_matrices={"confusion_matrix": (evaluation.classes, evaluation.confusion_matrix)},
        roc_curves={"roc_curve": evaluation.roc_curve or {}},
    )


def ui_metrics(evaluation: Evaluation, decision: Blessing) -> dict[str, float]:
    """The scalars for the Kubeflow UI's metrics table: test metrics with ``<name>_ci_low`` and
    ``_ci_high`` (95 % bootstrap), ``cv_<name>_mean`` and ``_std``, ``blessed`` (1 or 0), the
    champion comparison (``champion_<metric>``, ``champion_difference`` with ``_ci_low`` and
    ``_ci_high``, candidate - champion) and ``unseen_label_rows`` (when test labels were unseen
    in training); NaN values (e.g. ROC AUC of a one-class split) are left out."""
    low_end, high_end = artifacts.META_CI_LOW, artifacts.META_CI_HIGH
    logged = dict(evaluation.metrics)
    for name, (low, high) in evaluation.intervals.items():
        logged.update({name + low_end: low, name + high_end: high})
    logged["blessed"] = float(decision.blessed)
    if evaluation.unseen_labels:
        logged["unseen_label_rows"] = float(sum(evaluation.unseen_labels.values()))
    for name, summary in (evaluation.cross_validation or {}).get("metrics", {}).items():
        logged.update({f"cv_{name}_mean": summary["mean"], f"cv_{name}_std": summary["std"]})
    champion = decision.champion
    if champion:
        logged.update({f"champion_{champion.metric}": champion.champion, "champion_difference": champion.difference,
                       "champion_difference" + low_end: champion.low, "champion_difference" + high_end: champion.high})
    return {name: float(value) for name, value in logged.items() if math.isfinite(value)}


def _read_history(folder: PathLike) -> dict[str, Any]:
    history: dict[str, Any] = json.loads((Path(folder) / artifacts.HISTORY_FILE).read_text())
    return history
