"""Tune: Keras Tuner Hyperband over the search space, and the schedule it implies.

The best hyperparameters are written as ``HyperParameters.get_config()`` JSON, which final
training turns back into the same model with ``HyperParameters.from_config``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.config import TuningConfig
from tunepipe.hyperband import hyperband_budget

log = logging.getLogger(__name__)


class _ReportingHyperband(keras_tuner.Hyperband):
    """Hyperband that logs one line per finished trial, so long searches show progress."""

    expected_trials = 0

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        finished = sum(1 for t in self.oracle.trials.values() if t.status != "RUNNING")
        score = "n/a" if trial.score is None else f"{trial.score:.4f}"
        log.info(
            "tune: trial %s (%d/%d scheduled) %s, %s=%s, %d epochs",
            trial.trial_id, finished, self.expected_trials, trial.status.lower(),
            self.oracle.objective.name, score, trial.hyperparameters.values.get("tuner/epochs", 0),
        )


@dataclass(frozen=True)
class TuningResult:
    """The best hyperparameters (``get_config()`` form), their score and every trial."""

    best_hyperparameters: dict[str, Any]
    best_score: float
    trials: pd.DataFrame


def trial_table(oracle: keras_tuner.Oracle) -> pd.DataFrame:
    """One row per trial: id, status, score and hyperparameter values, best first."""
    rows = []
    for trial in oracle.trials.values():
        row = {"trial_id": trial.trial_id, "status": trial.status, "score": trial.score}
        row.update(trial.hyperparameters.values)
        rows.append(row)
    table = pd.DataFrame(rows)
    ascending = oracle.objective.direction == "min"
    return table.sort_values("score", ascending=ascending, na_position="last").reset_index(drop=True)


def run_tuning(
    hypermodel: keras_tuner.HyperModel,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    validation: tuple[dict[str, np.ndarray], np.ndarray],
    config: TuningConfig,
    seed: int,
    work_dir: str | Path,
) -> TuningResult:
    """Runs Hyperband and returns the best hyperparameters.

    Args:
        hypermodel: Builds and fits one model per trial.
        train: Training inputs and targets.
        validation: Validation inputs and targets; the objective is measured on them.
        config: Hyperband budget, objective and in-trial early-stopping patience.
        seed: Seeds Keras and the oracle; the same seed and data give the same search.
        work_dir: Tuner state (trials and checkpoints); an existing search there is resumed.
    """
    keras.utils.set_random_seed(seed)
    budget = hyperband_budget(config.max_epochs, config.factor, config.hyperband_iterations)
    log.info(
        "tune: Hyperband max_epochs=%d factor=%d iterations=%d schedules %d trials, %d epochs",
        config.max_epochs, config.factor, config.hyperband_iterations, budget.trials, budget.epochs,
    )
    direction = "min" if config.objective == "val_loss" else "max"
    tuner = _ReportingHyperband(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(config.objective, direction),
        max_epochs=config.max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        seed=seed,
        directory=str(work_dir),
        project_name="hyperband",
        overwrite=False,
    )
    tuner.expected_trials = budget.trials
    stop_early = keras.callbacks.EarlyStopping(monitor=config.objective, patience=config.patience)
    tuner.search(*train, validation_data=validation, callbacks=[stop_early], verbose=0)
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        raise RuntimeError("tuning finished without a successful trial")
    return TuningResult(best[0].hyperparameters.get_config(), float(best[0].score), trial_table(tuner.oracle))


def save_tuning(result: TuningResult, best_path: str | Path, trials_path: str | Path) -> None:
    """Writes the best hyperparameters (JSON) and the trial table (CSV)."""
    Path(best_path).write_text(json.dumps(result.best_hyperparameters, indent=2))
    result.trials.to_csv(trials_path, index=False)


def load_hyperparameters(path: str | Path) -> keras_tuner.HyperParameters:
    """Reads hyperparameters written by :func:`save_tuning`."""
    return keras_tuner.HyperParameters.from_config(json.loads(Path(path).read_text()))

