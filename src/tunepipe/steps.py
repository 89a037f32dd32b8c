"""Step entry points over folders: what each pipeline component calls.

Each function reads its inputs from artifact folders, calls the core, writes its outputs
into artifact folders (file names from :mod:`tunepipe.artifacts`) and returns the few plain
values a component logs as metadata. No ``kfp`` here: the components translate artifacts
to folders and back. The data steps live in :mod:`tunepipe.data_steps` (no TensorFlow import,
so the ingest and preprocess processes start fast) and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TrainingConfig, TuningConfig, validate_section
from tunepipe.data.features import PreprocessingSpec, model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import read_split, run_preprocess
from tunepipe.data_steps import ingest_metadata, ingest_step, preprocess_step
from tunepipe.evaluate_step import EvaluateInputs, EvaluateOutputs, evaluate_step, ui_metrics
from tunepipe.export_step import ExportInputs, export_step, record_refusal_step
from tunepipe.modelling.distributed import LOOPBACK, ensure_folder, free_port, local_gpus, run_local_distributed
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.devices import use_mixed_precision_on_gpu
from tunepipe.modelling.train import save_training, train_final
from tunepipe.modelling.tune import (
    TuningResult,
    build_tuner,
    collect_result,
    load_hyperparameters,
    run_tuning,
    save_tuning,
)
from tunepipe.reports.tuning_report import tuning_report_html
from tunepipe.step_logging import configure_logging
from tunepipe.storage import atomic
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.locking import exclusive
from tunepipe.storage.tuner_state import TunerStateSync, search_key, state_sync_for, tuner_directory

__all__ = [
    "EvaluateInputs", "EvaluateOutputs", "ExportInputs", "configure_logging", "evaluate_step", "export_step",
    "ingest_metadata", "ingest_step", "preprocess_step", "record_refusal_step", "run_ingest", "run_preprocess",
    "train_step", "tune_step", "ui_metrics",
]

log = logging.getLogger(__name__)


def _xy(split_dir: PathLike, spec: PreprocessingSpec) -> tuple[dict[str, np.ndarray], np.ndarray]:
    frame = read_split(split_dir)
    return model_inputs(frame, spec), targets(frame, spec)


def _spec(spec_dir: PathLike) -> PreprocessingSpec:
    return PreprocessingSpec.load(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def _folder(path: PathLike) -> Path:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tuning_problem(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, search_space: dict[str, Any]
) -> tuple[keras_tuner.HyperModel, tuple[dict[str, np.ndarray], np.ndarray], tuple[dict[str, np.ndarray], np.ndarray]]:
    """The hypermodel and the training and validation data, from the preprocess step's folders."""
    spec = _spec(spec_dir)
    space = validate_section(SearchSpace, search_space, "search_space parameter")
    return hypermodel_for(spec, space), _xy(train_dir, spec), _xy(validation_dir, spec)


def _problem_hash(spec_dir: PathLike) -> str:
    """SHA-256 of the preprocessing specification: what the model learns, from which statistics."""
    return sha256_file(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def tuner_location(
    tuning: TuningConfig, search_space: dict[str, Any], seed: int, model_name: str, fingerprint: str,
    default_root: PathLike, problem: str = "",
) -> str:
    """The tuner directory: ``<tuner_root or default_root>/<model_name>/<fingerprint>-<search hash>``;
    the search hash covers the search space, budget, seed and ``problem`` (:func:`_problem_hash`)."""
    space = validate_section(SearchSpace, search_space, "search_space parameter").model_dump(exclude_none=True)
    key = search_key(space, tuning.model_dump(), seed, problem)
    return tuner_directory(tuning.tuner_root or str(default_root), model_name, fingerprint, key)


def _one_run_at_a_time(location: str, sync: TunerStateSync | None, step: str) -> AbstractContextManager[None]:
    """A lock on a local shared folder (concurrent runs take turns); nothing for mirrored gs:// state."""
    return exclusive(location, step) if sync is None else nullcontext()


def tune_step(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike,
    search_space: dict[str, Any], tuning: TuningConfig, seed: int,
    best_dir: PathLike, trials_dir: PathLike, report_path: PathLike | None = None,
    model_name: str = "model", fingerprint: str = "sha256:unknown", gpus: int = 0,
) -> dict[str, Any]:
    """Runs (or resumes) Hyperband; writes the best hyperparameters, the trial table and the report.

    The tuner state goes to :func:`tuner_location`; without ``tuning.tuner_root`` that is a
    ``tuner`` folder inside ``trials_dir``, which a retried step does not see again.
    """
    log.info("tune: precision policy %s", use_mixed_precision_on_gpu())
    default_root = Path(trials_dir) / artifacts.TUNER_DIR
    location = tuner_location(
        tuning, search_space, seed, model_name, fingerprint, default_root, _problem_hash(spec_dir)
    )
    sync = state_sync_for(location)
    log.info("tune: tuner state in %s (backend %s)", location, tuning.backend)
    with tempfile.TemporaryDirectory(prefix="tunepipe-tuner-") as scratch, _one_run_at_a_time(location, sync, "tune"):
        work_dir = Path(scratch) if sync is not None else Path(location)
        if tuning.backend == "single":
            result = run_tuning(*tuning_problem(train_dir, validation_dir, spec_dir, search_space),
                                tuning, seed, work_dir, sync)
        else:
            result = _distributed(
                train_dir, validation_dir, spec_dir, search_space, tuning, seed, location, work_dir, sync, gpus
            )
    save_tuning(
        result, _folder(best_dir) / artifacts.BEST_HYPERPARAMETERS_FILE, _folder(trials_dir) / artifacts.TRIALS_FILE
    )
    if report_path is not None:
        budget = hyperband_budget(tuning.max_epochs, tuning.factor, tuning.hyperband_iterations)
        line = (f"Hyperband max_epochs={tuning.max_epochs} factor={tuning.factor} iterations="
                f"{tuning.hyperband_iterations}: {budget.trials} trials, {budget.epochs} epochs scheduled.")
        _folder(Path(report_path).parent)
        atomic.write_text(report_path, tuning_report_html(result.trials, tuning.objective, result.direction, line))
    statuses = result.trials["status"]
    return {
        artifacts.META_TRIALS: len(result.trials), artifacts.META_BEST_SCORE: result.best_score,
        artifacts.META_FAILED_TRIALS: int((statuses == "FAILED").sum()), artifacts.META_TUNER_DIRECTORY: location,
        artifacts.META_RESUMED_TRIALS: result.resumed_trials,
    }


def _distributed(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, search_space: dict[str, Any],
    tuning: TuningConfig, seed: int, location: str, work_dir: Path, sync: TunerStateSync | None, gpus: int,
) -> TuningResult:
    """Chief and workers (processes here, or pods), then the result from the shared oracle state."""
    hypermodel, _, _ = tuning_problem(train_dir, validation_dir, spec_dir, search_space)
    if tuning.backend == "kubernetes":
        from tunepipe.modelling.k8s_tuning import run_kubernetes_tuning

        run_kubernetes_tuning(train_dir, validation_dir, spec_dir, search_space, tuning, seed, location, gpus)
        if sync is not None:
            sync.download_all(work_dir)
    else:
        if sync is not None:
            sync.download_all(work_dir)
        arguments = [
            "--train", str(train_dir), "--validation", str(validation_dir), "--spec", str(spec_dir),
            "--search-space", json.dumps(search_space), "--tuning", tuning.model_dump_json(),
            "--seed", str(seed), "--directory", str(work_dir),
        ]
        ensure_folder(work_dir)
        upload = (lambda: sync.upload_changed(work_dir)) if sync is not None else None
        port = free_port()
        run_local_distributed([*arguments, "--bind", f"{LOOPBACK}:{port}"], tuning.workers, local_gpus(),
                              on_poll=upload, port=port)
    # the chief has finished: a plain tuner over the same directory reloads the final oracle state
    return collect_result(build_tuner(hypermodel, tuning, seed, work_dir).oracle)


def training_backup_location(
    tuner_root: str, model_name: str, hyperparameters: dict[str, Any], training: TrainingConfig, seed: int,
    default: PathLike, problem: str = "",
) -> str:
    """Where final training keeps its per-epoch backup.

    ``<tuner_root>/<model_name>/train-<hash>``, the hash over the best hyperparameters, the
    training section, the seed and ``problem`` (the preprocessing specification's hash, which
    changes with the data): a retried step (same inputs) finds its backup, any other training
    starts afresh. Without a tuner root: ``default`` (inside the step's own output).
    """
    if not tuner_root:
        return str(default)
    canonical = json.dumps(
        {"hp": hyperparameters, "training": training.model_dump(), "seed": seed, "problem": problem}, sort_keys=True
    )
    return f"{tuner_root.rstrip('/')}/{model_name}/train-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


class _MirrorAfterEpoch(keras.callbacks.Callback):
    def __init__(self, sync: TunerStateSync, folder: Path) -> None:
        super().__init__()
        self.sync, self.folder = sync, folder

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.sync.upload_changed(self.folder)


def train_step(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, hyperparameters_dir: PathLike,
    search_space: dict[str, Any], training: TrainingConfig, seed: int,
    model_dir: PathLike, history_dir: PathLike, tuner_root: str = "", model_name: str = "model",
) -> dict[str, Any]:
    """Trains the final model; writes ``model.keras`` and the history.

    The per-epoch backup a killed run resumes from lives at :func:`training_backup_location`;
    on ``gs://`` it is kept in a local folder mirrored after every epoch.
    """
    log.info("train: precision policy %s", use_mixed_precision_on_gpu())
    spec = _spec(spec_dir)
    space = validate_section(SearchSpace, search_space, "search_space parameter")
    hyperparameters = load_hyperparameters(Path(hyperparameters_dir) / artifacts.BEST_HYPERPARAMETERS_FILE)
    default = Path(history_dir) / artifacts.BACKUP_KERAS_DIR
    location = training_backup_location(
        tuner_root, model_name, hyperparameters.get_config(), training, seed, default, _problem_hash(spec_dir)
    )
    sync = state_sync_for(location)
    hypermodel = hypermodel_for(spec, space)
    with tempfile.TemporaryDirectory(prefix="tunepipe-backup-") as scratch, _one_run_at_a_time(location, sync, "train"):
        backup = Path(scratch) if sync is not None else Path(location)
        if sync is not None:
            sync.download_all(backup)
            hypermodel.extra_callbacks = [_MirrorAfterEpoch(sync, backup)]
        log.info("train: per-epoch backup in %s", location)
        result = train_final(
            hypermodel, hyperparameters, _xy(train_dir, spec), _xy(validation_dir, spec), training, seed, backup
        )
    save_training(result, _folder(model_dir) / artifacts.MODEL_FILE, _folder(history_dir) / artifacts.HISTORY_FILE)
    return {
        artifacts.META_EPOCHS: len(result.history["loss"]), artifacts.META_BEST_EPOCH: result.best_epoch,
        artifacts.META_RESUMED_FROM_EPOCH: result.resumed_from_epoch,
    }

