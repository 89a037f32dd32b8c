"""Train: the final model from the best hyperparameters, resumable after preemption.

Three callbacks do the work: early stopping that keeps the best epoch's weights, a learning
rate cut on plateaus (``training.lr_schedule``), and ``keras.callbacks.BackupAndRestore``,
which saves weights and the epoch counter after every epoch so a killed step, run again with
the same ``backup_dir``, continues from its last finished epoch. The early-stopping state and
the per-epoch history are kept in the same folder, so a resumed run stops where an
uninterrupted one would have, and its history covers every epoch. Weights are written with
:func:`save_training_state` (``.npz``, ~5 ms for the tabular MLP) rather than Keras'
``save_weights`` (HDF5, ~40 ms, most of it walking the model), and an epoch that improves on
the best serialises them once: the backup copies the best-weights file early stopping has
just written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from tunepipe import artifacts
from tunepipe.config import TrainingConfig
from tunepipe.errors import TunepipeError
from tunepipe.modelling.stopping import EarlyStoppingRule
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

# One progress line every this many epochs keeps a 100-epoch log readable.
LOG_EVERY_EPOCHS = 10
# The backup's weights, in BackupAndRestore's folder (save_training_state's format).
LATEST_WEIGHTS_FILE = "latest.weights.npz"
# Keras' HDF5 names that a backup written by an earlier tunepipe holds instead: still read on resume.
LEGACY_LATEST_WEIGHTS_FILE = "latest.weights.h5"
LEGACY_BEST_WEIGHTS_FILE = "best.weights.h5"


def _write_json(path: Path, payload: Any) -> None:
    atomic.write_text(path, json.dumps(payload))  # a kill never leaves half a file


def _state_variables(model: keras.Model) -> list[Any]:
    """What ``model.save_weights`` saves: the model's weights, then its optimizer's variables."""
    return [*model.weights, *(model.optimizer.variables if model.optimizer is not None else [])]


def save_training_state(model: keras.Model, path: str | Path) -> None:
    """Writes the model's weights and its optimizer's variables to ``path`` as ``.npz``, in order.

    The same state as ``model.save_weights`` (weights, optimizer step, learning rate and
    moments), without Keras' walk over the model that makes an HDF5 save take ~40 ms for
    the tabular MLP (this takes ~5 ms); the backup writes one every epoch. Like Keras'
    own optimizer state, the arrays are matched to variables by position: a file is read
    back only into a model built from the same hyperparameters (the backup's folder is
    keyed by them). Write it through :mod:`tunepipe.storage.atomic` to get it whole or not at all.
    """
    arrays = {f"v{index}": keras.ops.convert_to_numpy(variable) for index, variable in
              enumerate(_state_variables(model))}
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def load_training_state(model: keras.Model, path: str | Path) -> None:
    """Reads a file written by :func:`save_training_state` (or, ``.h5``, by ``save_weights``) into ``model``.

    Raises:
        ValueError: The file holds another number of variables, or another shape, than the model.
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to take the values
    if Path(path).suffix == ".h5":  # a backup written by an earlier tunepipe
        model.load_weights(path)
        return
    variables = _state_variables(model)
    with np.load(path, allow_pickle=False) as saved:
        if len(saved.files) != len(variables):
            raise ValueError(f"{path} holds {len(saved.files)} variables, the model and optimizer {len(variables)}")
        for index, variable in enumerate(variables):
            value = saved[f"v{index}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{path}: variable {index} ({variable.path}) has shape {tuple(variable.shape)}, "
                                 f"the file {tuple(value.shape)}")
            variable.assign(value)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose weights and epoch counter are each replaced atomically.

    Keras writes ``latest.weights.h5`` and ``training_metadata.json`` in place: a kill during
    either write leaves a truncated file, and the resumed step fails to read it. Here both
    go to a temporary name first and are renamed over the old ones (weights first, so the
    counter never names an epoch whose weights are not on disk). A kill between the two
    renames resumes one epoch early, on the later weights: the interrupted epoch runs again,
    never an earlier one. Backups are always local folders here (gs:// state is mirrored
    from a local scratch folder), so ``os.replace`` applies. The weights are
    ``latest.weights.npz`` (:func:`save_training_state`); a backup that holds Keras'
    ``latest.weights.h5`` instead (an earlier tunepipe's) is still resumed from.

    Args:
        backup_dir: The folder of the weights and ``training_metadata.json``.
        early_stopping: The :class:`DurableEarlyStopping` that runs just before this callback,
            if any. When it has saved this epoch's weights as the best (the same weights:
            nothing runs between the two), they are copied (a plain file copy) instead of
            serialised a second time.
    """

    def __init__(self, backup_dir: str, early_stopping: DurableEarlyStopping | None = None) -> None:
        super().__init__(backup_dir)
        self.early_stopping = early_stopping
        self._legacy_weights_path = str(Path(backup_dir) / LEGACY_LATEST_WEIGHTS_FILE)
        self._weights_path = str(Path(backup_dir) / LATEST_WEIGHTS_FILE)

    def _load_model(self) -> None:
        weights = next((Path(p) for p in (self._weights_path, self._legacy_weights_path) if Path(p).exists()), None)
        if weights is not None:
            load_training_state(self.model, weights)
        metadata = Path(self._training_metadata_path)
        if metadata.exists():
            self.model._initial_epoch = json.loads(metadata.read_text())["epoch"]

    def _save_model(self) -> None:
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        saved = self.early_stopping.weights_saved_at(self._current_epoch) if self.early_stopping else None
        with atomic.replacing(self._weights_path) as partial:
            if saved is not None:
                shutil.copyfile(saved, partial)
            else:
                save_training_state(self.model, partial)
        _write_json(Path(self._training_metadata_path), {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class _EpochLogger(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if (epoch + 1) % LOG_EVERY_EPOCHS == 0 and logs:
            shown = ", ".join(f"{name}={value:.4f}" for name, value in sorted(logs.items()))
            log.info("train: epoch %d: %s", epoch + 1, shown)


class DurableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on ``val_loss`` (:class:`~tunepipe.modelling.stopping.EarlyStoppingRule`) with
    restore-best-weights, whose state survives a restart.

    Keras' own ``EarlyStopping`` starts counting afresh after ``BackupAndRestore`` resumes;
    this one keeps the rule's state (best value, its epoch, the wait count, the history) and the
    best weights in ``folder``. It must come *before* ``BackupAndRestore`` in the callback list:
    its state is then written before the backup's epoch counter, which is what commits an
    epoch, so a kill between the two never leaves a counter ahead of this history. It loads
    its state when the first epoch begins, once ``BackupAndRestore`` has set the resumed epoch.
    An epoch that improves writes its weights once: the backup right after copies this file
    (:meth:`weights_saved_at`). When the last epoch run was the best, the model keeps the
    weights it has at the end instead of reading the same ones back.
    """

    def __init__(self, folder: Path, patience: int, min_delta: float = 0.0) -> None:
        super().__init__()
        self.folder = folder
        self.rule = EarlyStoppingRule(patience, min_delta)
        self.loaded = False
        self._saved_epoch = 0  # the epoch (1-based) whose weights this run last saved as the best
        self._ended_epoch = 0  # the last epoch (1-based) this run finished

    def weights_saved_at(self, epoch: int) -> Path | None:
        """The best-weights file if this run saved it at the end of ``epoch`` (1-based), else None."""
        return self.folder / artifacts.BACKUP_BEST_WEIGHTS_FILE if epoch and self._saved_epoch == epoch else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.loaded:
            self._load()

    def _load(self) -> None:
        self.loaded = True
        self.folder.mkdir(parents=True, exist_ok=True)
        start = int(getattr(self.model, "_initial_epoch", None) or 0)
        state_path = self.folder / artifacts.BACKUP_STATE_FILE
        if start and state_path.exists():
            self.rule.restore(json.loads(state_path.read_text()), start)
            log.info("train: resumed after epoch %d (best so far: epoch %d)", start, self.rule.best_epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._ended_epoch = epoch + 1
        logs = dict(logs or {})
        # the rate this epoch trained with (ReduceLROnPlateau, placed before, logs it before cutting)
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        if self.rule.observe(epoch, logs):
            with atomic.replacing(self.folder / artifacts.BACKUP_BEST_WEIGHTS_FILE) as partial:
                save_training_state(self.model, partial)
            self._saved_epoch = epoch + 1
        elif self.rule.stop:
            self.model.stop_training = True
        _write_json(self.folder / artifacts.BACKUP_STATE_FILE, self.rule.state())

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self.loaded:  # resumed after the last epoch's backup: no epoch ran
            self._load()
        if self._saved_epoch and self._saved_epoch == self._ended_epoch:
            return  # the last epoch was the best: the model already holds the weights just saved
        for name in (artifacts.BACKUP_BEST_WEIGHTS_FILE, LEGACY_BEST_WEIGHTS_FILE):  # the latter: an older backup
            if (self.folder / name).exists():
                load_training_state(self.model, self.folder / name)
                return


@dataclass(frozen=True)
class TrainingResult:
    """The trained model (best epoch's weights) and its per-epoch history."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    resumed_from_epoch: int = 0
    replicas_in_sync: int = 1  # what the model's own distribution strategy trained on


def training_callbacks(config: TrainingConfig, backup_dir: Path) -> list[keras.callbacks.Callback]:
    """(By default) ReduceLROnPlateau, durable early stopping, then BackupAndRestore, in that order."""
    callbacks: list[keras.callbacks.Callback] = []
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-6, verbose=0,
        ))
    stopper = DurableEarlyStopping(backup_dir, config.patience, config.min_delta)
    backup = AtomicBackupAndRestore(str(backup_dir / artifacts.BACKUP_KERAS_DIR), early_stopping=stopper)
    return [*callbacks, stopper, backup, _EpochLogger()]  # the backup right after early stopping (see both)


def train_final(
    hypermodel: keras_tuner.HyperModel,
    hyperparameters: keras_tuner.HyperParameters,
    train: tuple[dict[str, np.ndarray], np.ndarray] | Any,
    validation: tuple[dict[str, np.ndarray], np.ndarray] | Any,
    config: TrainingConfig,
    seed: int,
    backup_dir: str | Path,
    scope: contextlib.AbstractContextManager[Any] | None = None,
) -> TrainingResult:
    """Rebuilds the tuned model and trains it until validation loss stops improving.

    Args:
        hypermodel: Builds the model and fits it with the tuned batch size.
        hyperparameters: The tuner's best hyperparameters.
        train: Training inputs and targets, or a ``tf.data`` dataset of batches (a streamed split,
            :meth:`tunepipe.data.split.Split.inputs`), shuffled by the dataset itself.
        validation: Validation inputs and targets, or a dataset (early stopping and the
            learning-rate schedule).
        config: Epoch bound, patience and learning-rate schedule.
        seed: Seeds Keras.
        backup_dir: Where the per-epoch backup lives. A run that finds a backup of the same
            training there resumes after its last finished epoch; use a fresh folder to start over.
        scope: The distribution the model is built and trained in, e.g. every device of the
            node (:func:`tunepipe.execution.replicas.replica_scope`); default none: one device.
            The callbacks restore and save inside it too.

    Raises:
        TunepipeError: The backup could not be written (e.g. no space left on its disk).
    """
    keras.utils.set_random_seed(seed)
    folder = Path(backup_dir)
    callbacks = training_callbacks(config, folder)
    stopper = next(c for c in callbacks if isinstance(c, DurableEarlyStopping))
    try:
        with scope or contextlib.nullcontext():  # the callbacks restore and save inside it too
            model = hypermodel.build(hyperparameters)
            data = train if isinstance(train, tuple) else (train,)
            hypermodel.fit(
                hyperparameters, model, *data, validation_data=validation, shuffle=isinstance(train, tuple),
                epochs=config.max_epochs, callbacks=callbacks, verbose=0,
            )
    except OSError as error:  # the per-epoch backup could not be written (disk full, gone)
        raise TunepipeError(
            f"train: cannot write the per-epoch backup under {folder}: {error}; the last complete "
            "backup is kept and a re-run resumes from it"
        ) from error
    resumed = int(getattr(model, "_initial_epoch", None) or 0)
    rule = stopper.rule
    log.info("train: %d epochs run, best epoch %d (val_loss %.4f)", len(rule.history["val_loss"]), rule.best_epoch,
             rule.best)
    strategy = getattr(model, "distribute_strategy", None)  # the TensorFlow backend's trainer has one
    in_sync = int(getattr(strategy, "num_replicas_in_sync", 1))
    return TrainingResult(model, rule.history, rule.best_epoch, resumed, in_sync)


def save_training(
    result: TrainingResult, model_path: str | Path, history_path: str | Path, described: dict[str, Any] | None = None,
) -> None:
    """Writes the model (``.keras``) and the history with the best epoch and, when given, the
    description of the exported model (JSON, under :data:`artifacts.HISTORY_MODEL`)."""
    with atomic.replacing(model_path) as partial:
        result.model.save(partial)
    payload: dict[str, Any] = {artifacts.META_BEST_EPOCH: result.best_epoch, "history": result.history}
    if described is not None:
        payload[artifacts.HISTORY_MODEL] = described
    atomic.write_text(history_path, json.dumps(payload, indent=2))
