"""Train: the final model from the best hyperparameters, with early stopping."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from tunepipe import artifacts
from tunepipe.config import TrainingConfig

log = logging.getLogger(__name__)

# One progress line every this many epochs keeps a 100-epoch log readable.
LOG_EVERY_EPOCHS = 10


class _EpochLogger(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if (epoch + 1) % LOG_EVERY_EPOCHS == 0 and logs:
            shown = ", ".join(f"{name}={value:.4f}" for name, value in sorted(logs.items()))
            log.info("train: epoch %d: %s", epoch + 1, shown)


@dataclass(frozen=True)
class TrainingResult:
    """The trained model (best epoch's weights) and its per-epoch history."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int


def train_final(
    hypermodel: keras_tuner.HyperModel,
    hyperparameters: keras_tuner.HyperParameters,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    validation: tuple[dict[str, np.ndarray], np.ndarray],
    config: TrainingConfig,
    seed: int,
) -> TrainingResult:
    """Rebuilds the tuned model and trains it until validation loss stops improving.

    ``EarlyStopping(restore_best_weights=True)`` returns the weights of the best validation
    epoch rather than the last one.
    """
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hyperparameters)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    fitted = hypermodel.fit(
        hyperparameters, model, *train, validation_data=validation,
        epochs=config.max_epochs, callbacks=[stop, _EpochLogger()], verbose=0,
    )
    history = {name: [float(v) for v in values] for name, values in fitted.history.items()}
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    log.info(
        "train: %d epochs run, best epoch %d (val_loss %.4f)",
        len(history["val_loss"]), best_epoch, min(history["val_loss"]),
    )
    return TrainingResult(model, history, best_epoch)


def save_training(result: TrainingResult, model_path: str | Path, history_path: str | Path) -> None:
    """Writes the model (``.keras``) and the history with the best epoch (JSON)."""
    result.model.save(model_path)
    payload: dict[str, Any] = {artifacts.META_BEST_EPOCH: result.best_epoch, "history": result.history}
    Path(history_path).write_text(json.dumps(payload, indent=2))
