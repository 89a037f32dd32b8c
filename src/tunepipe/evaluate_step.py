"""The evaluate step over folders: metrics, cross-validation, champion, blessing, report.

Called by the evaluate component. Everything the blessing
compares is computed here, in one step, on one test split: the candidate's metrics and the
current champion's.
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
import pandas as pd

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import EvaluationConfig, SearchSpace
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.preprocess import read_split
from tunepipe.evaluation.blessing import Blessing, ChampionComparison, bless, validate_thresholds
from tunepipe.evaluation.bootstrap import Scores
from tunepipe.evaluation.champion import compare, load_champion
from tunepipe.evaluation.crossval import cross_validate, fold_processes
from tunepipe.evaluation.evaluate import Evaluation, evaluate_model
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.distributed import local_gpus
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.reports.report import build_report
from tunepipe.step_folders import output_folder
from tunepipe.storage import atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateInputs:
    """The artifact folders evaluate reads."""

    model: PathLike
    train: PathLike
    validation: PathLike
    test: PathLike
    spec: PathLike
    hyperparameters: PathLike
    history: PathLike


@dataclass(frozen=True)
class EvaluateOutputs:
    """Where evaluate writes: folders for the evaluation and the blessing, and the report's
    file itself (a KFP HTML artifact is one file, which the Kubeflow UI renders)."""

    evaluation: PathLike
    blessing: PathLike
    report_file: PathLike


def _cross_validation(
    inputs: EvaluateInputs, spec: PreprocessingSpec, search_space: SearchSpace, config: EvaluationConfig,
    epochs: int, seed: int,
) -> dict[str, Any] | None:
    frame = pd.concat([read_split(inputs.train), read_split(inputs.validation)], ignore_index=True)
    if spec.is_classification:  # a validation row of a class the training split lacks cannot be fitted
        known = frame[spec.label].astype(str).isin(spec.classes)
        if not known.all():
            log.info("evaluate: cross-validation leaves out %d rows of classes unseen in training", int((~known).sum()))
            frame = frame[known].reset_index(drop=True)
    if config.cv_folds < 2 or len(frame) >= config.cv_max_rows:
        log.info("evaluate: no cross-validation (%d rows, cv_folds %d, cv_max_rows %d)",
                 len(frame), config.cv_folds, config.cv_max_rows)
        return None
    hyperparameters = load_hyperparameters(Path(inputs.hyperparameters) / artifacts.BEST_HYPERPARAMETERS_FILE)
    hypermodel = hypermodel_for(spec, search_space)
    processes = fold_processes(config.cv_workers, local_gpus())
    return cross_validate(hypermodel, hyperparameters, frame, spec, config.cv_folds, epochs, seed, processes)


def _champion(
    candidate: Scores, test: pd.DataFrame, spec: PreprocessingSpec, export_root: str, model_name: str,
    config: EvaluationConfig, seed: int,
) -> ChampionComparison | None:
    with tempfile.TemporaryDirectory(prefix="tunepipe-champion-") as scratch:
        champion = load_champion(export_root, model_name, Path(scratch))
        if champion is None:
            log.info("evaluate: no champion under %r yet", export_root)
            return None
        return compare(candidate, champion, test, spec, config.champion_margin, config.champion_rule, seed)


def evaluate_step(
    inputs: EvaluateInputs, outputs: EvaluateOutputs, config: EvaluationConfig, search_space: SearchSpace,
    export_root: str, model_name: str, seed: int,
) -> tuple[Evaluation, Blessing]:
    """Scores the model, cross-validates small data, compares with the champion, decides.

    Args:
        inputs: Folders of the model, the splits, the preprocessing spec, the best
            hyperparameters and the training history.
        outputs: Folders for evaluation.json and blessing.json, and the HTML report's file.
        config: Thresholds, force_export, champion margin and cross-validation settings.
        search_space: The search space the hyperparameters came from (rebuilds the model).
        export_root: Where the champion pointer lives; empty means no champion.
        model_name: The model's folder name under ``export_root``.
        seed: Seeds the cross-validation folds and fits, and the bootstrap resamples of the
            intervals and of the champion comparison.
    """
    spec = PreprocessingSpec.load(Path(inputs.spec) / artifacts.PREPROCESSING_SPEC_FILE)
    validate_thresholds(config.thresholds, spec.task)
    test = read_split(inputs.test)
    scored = evaluate_model(keras.models.load_model(Path(inputs.model) / artifacts.MODEL_FILE), test, spec)
    history = _read_history(inputs.history)
    cv = _cross_validation(inputs, spec, search_space, config, history[artifacts.META_BEST_EPOCH], seed)
    evaluation = dataclasses.replace(scored.with_intervals(seed), cross_validation=cv)
    champion = _champion(scored.scores, test, spec, export_root, model_name, config, seed)
    decision = bless(evaluation.metrics, config.thresholds, spec.task, config.force_export, champion)
    evaluation.save(output_folder(outputs.evaluation) / artifacts.EVALUATION_FILE)
    decision.save(output_folder(outputs.blessing) / artifacts.BLESSING_FILE)
    report = build_report(
        f"{model_name}: {spec.task} of {spec.label!r}", dataclasses.asdict(evaluation), history["history"],
        decision.to_dict(), scored.y_true, scored.outputs,
    )
    output_folder(Path(outputs.report_file).parent)
    atomic.write_text(outputs.report_file, report)
    log.info("evaluate: %s, %s", "blessed" if decision.blessed else "not blessed", decision.reason)
    return evaluation, decision


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
