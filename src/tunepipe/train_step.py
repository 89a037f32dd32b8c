"""The train step over folders: the final model from the best hyperparameters, resumable.

Called by the train component. Rebuilds the tuned model, trains it with a per-epoch backup
(:func:`training_backup_location`) that a retried step resumes from, and writes
``model.keras`` and the history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import keras

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.data.preprocess import read_arrays, read_spec
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.devices import use_mixed_precision_on_gpu
from tunepipe.modelling.problem import problem_hash
from tunepipe.modelling.train import save_training, train_final
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.step_folders import one_run_at_a_time, output_folder
from tunepipe.storage.tuner_state import TunerStateSync, state_sync_for

log = logging.getLogger(__name__)


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
    search_space: SearchSpace, training: TrainingConfig, seed: int,
    model_dir: PathLike, history_dir: PathLike, tuner_root: str = "", model_name: str = "model",
) -> dict[str, Any]:
    """Trains the final model; writes ``model.keras`` and the history.

    The per-epoch backup a killed run resumes from lives at :func:`training_backup_location`;
    on ``gs://`` it is kept in a local folder mirrored after every epoch.
    """
    log.info("train: precision policy %s", use_mixed_precision_on_gpu())
    spec = read_spec(spec_dir)
    hyperparameters = load_hyperparameters(Path(hyperparameters_dir) / artifacts.BEST_HYPERPARAMETERS_FILE)
    default = Path(history_dir) / artifacts.BACKUP_KERAS_DIR
    location = training_backup_location(
        tuner_root, model_name, hyperparameters.get_config(), training, seed, default, problem_hash(spec_dir)
    )
    sync = state_sync_for(location)
    hypermodel = hypermodel_for(spec, search_space)
    with tempfile.TemporaryDirectory(prefix="tunepipe-backup-") as scratch, one_run_at_a_time(location, sync, "train"):
        backup = Path(scratch) if sync is not None else Path(location)
        if sync is not None:
            sync.download_all(backup)
            hypermodel.extra_callbacks = [_MirrorAfterEpoch(sync, backup)]
        log.info("train: per-epoch backup in %s", location)
        train, validation = read_arrays(train_dir, spec), read_arrays(validation_dir, spec)
        result = train_final(hypermodel, hyperparameters, train, validation, training, seed, backup)
    save_training(
        result, output_folder(model_dir) / artifacts.MODEL_FILE, output_folder(history_dir) / artifacts.HISTORY_FILE
    )
    validation_losses = result.history.get("val_loss") or [float("nan")]
    return {
        artifacts.META_EPOCHS: len(result.history["loss"]), artifacts.META_BEST_EPOCH: result.best_epoch,
        artifacts.META_RESUMED_FROM_EPOCH: result.resumed_from_epoch,
        artifacts.META_BEST_VAL_LOSS: float(min(validation_losses)),
    }
