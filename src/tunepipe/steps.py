"""Step entry points over folders: what each pipeline component calls.

Each function reads its inputs from artifact folders, calls the core, writes its outputs
into artifact folders (file names from :mod:`tunepipe.artifacts`) and returns the few plain
values a component logs as metadata. No ``kfp`` here: the components translate artifacts
to folders and back.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tunepipe import artifacts
from tunepipe.config import (
    AugmentationConfig,
    CleaningConfig,
    ImageConfig,
    PreprocessingConfig,
    SearchSpace,
    SplitConfig,
    TrainingConfig,
    TuningConfig,
    validate_section,
)
from tunepipe.errors import TunepipeError
from tunepipe.evaluate_step import EvaluateInputs, EvaluateOutputs, evaluate_step, ui_metrics
from tunepipe.export_step import ExportInputs, export_step, record_refusal_step
from tunepipe.features import PreprocessingSpec, model_inputs, targets
from tunepipe.ingest import IngestResult, run_ingest
from tunepipe.model import hypermodel_for
from tunepipe.preprocess import read_split, run_preprocess
from tunepipe.train import save_training, train_final
from tunepipe.tune import load_hyperparameters, run_tuning, save_tuning

__all__ = [
    "EvaluateInputs", "EvaluateOutputs", "ExportInputs", "evaluate_step", "export_step", "ingest_metadata",
    "ingest_step", "preprocess_step", "record_refusal_step", "run_ingest", "run_preprocess", "train_step",
    "tune_step", "ui_metrics",
]

PathLike = str | Path
log = logging.getLogger(__name__)


def _report_expected_errors(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    if isinstance(error, TunepipeError):
        print(f"error: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, trace)


def configure_logging() -> None:
    """Progress lines on stdout, without TensorFlow's and Keras's routine warnings.

    Also makes an expected error (:class:`~tunepipe.errors.TunepipeError`) that ends the step
    print one ``error: ...`` line instead of a traceback; the exit status stays non-zero.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    sys.excepthook = _report_expected_errors
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")


def _xy(split_dir: PathLike, spec: PreprocessingSpec) -> tuple[dict[str, np.ndarray], np.ndarray]:
    frame = read_split(split_dir)
    return model_inputs(frame, spec), targets(frame, spec)


def _spec(spec_dir: PathLike) -> PreprocessingSpec:
    return PreprocessingSpec.load(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def _folder(path: PathLike) -> Path:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ingest_step(
    data_uri: str, label: str, task: str, cleaning: dict[str, Any], images: dict[str, Any],
    baseline_schema_uri: str, cleaned_dir: PathLike, html_path: PathLike,
) -> IngestResult:
    """Validates the cleaning and image settings (pipeline parameters), then runs ingest."""
    return run_ingest(
        data_uri, label, task, cleaned_dir,
        cleaning=validate_section(CleaningConfig, cleaning, "cleaning parameter"),
        images=validate_section(ImageConfig, images, "pipeline parameters"),
        baseline_schema_uri=baseline_schema_uri, html_path=html_path,
    )


def ingest_metadata(result: IngestResult) -> dict[str, Any]:
    """The metadata recorded on the cleaned-data artifact: rows, task, fingerprint, kind, findings."""
    drift = result.report.get("drift") or {}
    skipped = (result.report.get("images") or {}).get("corrupt_skipped", [])
    return {
        artifacts.META_ROWS: result.report["rows_out"],
        artifacts.META_TASK: result.schema["task"],
        artifacts.META_FINGERPRINT: result.schema["fingerprint"],
        artifacts.META_KIND: result.schema.get("kind", "table"),
        artifacts.META_DRIFT_FINDINGS: len(drift.get("findings", [])),
        artifacts.META_CORRUPT_SKIPPED: len(skipped),
    }


def preprocess_step(
    cleaned_dir: PathLike, split: dict[str, Any], seed: int, output_dirs: dict[str, PathLike],
    preprocessing: dict[str, Any], augmentation: dict[str, Any],
) -> PreprocessingSpec:
    """Validates the split, encoding and augmentation settings, then splits and fits the specification."""
    source = "pipeline parameters"
    return run_preprocess(
        cleaned_dir, validate_section(SplitConfig, split, source), seed, dict(output_dirs),
        validate_section(PreprocessingConfig, preprocessing, source),
        validate_section(AugmentationConfig, augmentation, "augmentation parameter"),
    )


def tune_step(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike,
    search_space: dict[str, Any], tuning: TuningConfig, seed: int,
    best_dir: PathLike, trials_dir: PathLike,
) -> dict[str, Any]:
    """Runs Hyperband; writes the best hyperparameters (JSON) and the trial table (CSV)."""
    spec = _spec(spec_dir)
    space = validate_section(SearchSpace, search_space, "search_space parameter")
    hypermodel = hypermodel_for(spec, space)
    with tempfile.TemporaryDirectory(prefix="tunepipe-tuner-") as work_dir:
        result = run_tuning(
            hypermodel, _xy(train_dir, spec), _xy(validation_dir, spec), tuning, seed, work_dir
        )
    save_tuning(
        result, _folder(best_dir) / artifacts.BEST_HYPERPARAMETERS_FILE, _folder(trials_dir) / artifacts.TRIALS_FILE
    )
    return {artifacts.META_TRIALS: len(result.trials), artifacts.META_BEST_SCORE: result.best_score}


def train_step(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, hyperparameters_dir: PathLike,
    search_space: dict[str, Any], training: TrainingConfig, seed: int,
    model_dir: PathLike, history_dir: PathLike,
) -> dict[str, Any]:
    """Trains the final model; writes ``model.keras`` and the history."""
    spec = _spec(spec_dir)
    space = validate_section(SearchSpace, search_space, "search_space parameter")
    hyperparameters = load_hyperparameters(Path(hyperparameters_dir) / artifacts.BEST_HYPERPARAMETERS_FILE)
    result = train_final(
        hypermodel_for(spec, space), hyperparameters,
        _xy(train_dir, spec), _xy(validation_dir, spec), training, seed,
    )
    save_training(result, _folder(model_dir) / artifacts.MODEL_FILE, _folder(history_dir) / artifacts.HISTORY_FILE)
    return {artifacts.META_EPOCHS: len(result.history["loss"]), artifacts.META_BEST_EPOCH: result.best_epoch}

