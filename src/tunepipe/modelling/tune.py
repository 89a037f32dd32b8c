"""Tune: Keras Tuner Hyperband over the search space, resumable and tolerant of bad trials.

The best hyperparameters are written as ``HyperParameters.get_config()`` JSON, which final
training turns back into the same model with ``HyperParameters.from_config``. A trial that
runs out of memory or whose loss turns NaN fails alone (``FailedTrialError``); the search
stops only after ``max_consecutive_failed_trials`` such failures in a row, with a
:class:`~tunepipe.errors.TuningError` naming the last cause.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.config import TuningConfig
from tunepipe.errors import TuningError
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.storage import atomic
from tunepipe.storage.tuner_state import PROJECT_NAME, TunerStateSync, write_state_json, writes_in_place

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the mixins call Keras Tuner's own methods through super()
    from keras_tuner import Oracle as _OracleBase
    from keras_tuner import Tuner as _TunerBase
else:
    _OracleBase = _TunerBase = object


class WholeFileOracleMixin(_OracleBase):
    """What the pipeline adds to any Keras Tuner oracle: its state files are replaced whole.

    Overrides the two methods through which an oracle persists itself, ``save`` (``oracle.json``)
    and ``_save_trial`` (``trial_<id>/trial.json``, the name ``Oracle.reload`` reads back). Put it
    before the Keras Tuner oracle: ``class PipelineXOracle(WholeFileOracleMixin, keras_tuner.oracles.XOracle)``.
    """

    def save(self) -> None:
        path = self._get_oracle_fname()
        if writes_in_place(path):
            super().save()
        else:
            write_state_json(path, self.get_state())

    def _save_trial(self, trial: Any) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        if writes_in_place(path):
            super()._save_trial(trial)
        else:
            write_state_json(path, trial.get_state())


# How backends word an allocation failure: TensorFlow's ResourceExhaustedError says
# RESOURCE_EXHAUSTED / OOM, JAX and PyTorch say "out of memory"; Python raises MemoryError.
_OOM_MARKS = ("RESOURCE_EXHAUSTED", "out of memory", "OOM when allocating")
# Keras Tuner's own message when the failure limit is reached (engine/oracle.py).
_TOO_MANY_FAILURES = "Number of consecutive failures exceeded"
# Hyperparameters Hyperband adds to every trial; shown in the trial table as columns.
EPOCHS_HP, BRACKET_HP, ROUND_HP, PARENT_HP = "tuner/epochs", "tuner/bracket", "tuner/round", "tuner/trial_id"


def is_out_of_memory(error: BaseException) -> bool:
    """True for MemoryError and for backend errors whose type or message says memory ran out."""
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return True
    return any(mark.lower() in str(error).lower() for mark in _OOM_MARKS)


def non_finite_loss(histories: Any) -> tuple[int, str] | None:
    """The first epoch (1-based) whose training or validation loss is NaN or infinite, and which one."""
    for history in histories if isinstance(histories, list) else [histories]:
        logs = getattr(history, "history", None) or {}
        for name in ("loss", "val_loss"):
            for epoch, value in enumerate(logs.get(name, []), start=1):
                if not math.isfinite(float(value)):
                    return epoch, "NaN" if math.isnan(float(value)) else "inf"
    return None


def nan_loss_epoch(histories: Any) -> int | None:
    """The first epoch (1-based) whose training or validation loss is not finite, if any."""
    found = non_finite_loss(histories)
    return found[0] if found else None


def failure_cause(trial: Any) -> str | None:
    """Why a failed trial failed: the last line of Keras Tuner's message, without the error's type."""
    lines = [line for line in (getattr(trial, "message", None) or "").splitlines() if line.strip()]
    if trial.status != "FAILED" or not lines:
        return None
    kind, _, cause = lines[-1].partition(": ")
    return cause if cause and " " not in kind else lines[-1]


class PipelineTunerMixin(_TunerBase):
    """What the pipeline adds to any Keras Tuner algorithm: failed-trial detection (out of
    memory, NaN or infinite loss), ``tuner0.json`` replaced whole, a state mirror after each trial,
    and progress lines.

    Put it before the Keras Tuner class: ``class PipelineX(PipelineTunerMixin, keras_tuner.X)``,
    give it an oracle with :class:`WholeFileOracleMixin` (as :class:`PipelineHyperband` does), then
    add the class to :data:`TUNER_CLASSES`. The mixin has no ``__init__``: the tuner class decides
    which Keras Tuner ``__init__`` builds it.

    Attributes:
        expected_trials: Trials the schedule holds (for the progress lines).
        state_sync: Mirror of the tuner folder to the object store, updated after every trial.
        failure_causes: Why each failed trial failed, in order (the last one names the cause
            when the search is stopped).
    """

    expected_trials = 0
    state_sync: TunerStateSync | None = None

    @property
    def failure_causes(self) -> list[str]:
        """Why each failed trial failed, in order; empty until one fails."""
        causes: list[str] = self.__dict__.setdefault("_failure_causes", [])
        return causes

    def save(self) -> None:
        """``BaseTuner.save``: the oracle's state (not on a distributed worker, whose oracle is the
        chief's), then this tuner's ``tuner0.json``, replaced whole where it is a local file."""
        path = self._get_tuner_fname()
        if writes_in_place(path):
            super().save()
            return
        if not self._is_worker():
            self.oracle.save()
        write_state_json(path, self.get_state())

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            histories = super().run_trial(trial, *args, **kwargs)
        except keras_tuner.errors.FailedTrialError:
            raise
        except Exception as error:
            if is_out_of_memory(error):
                self._fail(trial, f"out of memory: {str(error).strip().splitlines()[0][:200]}", error)
            raise
        # StopOnNonFiniteLoss stopped the fit at the end of the epoch that went non-finite
        diverged = non_finite_loss(histories)
        if diverged is not None:
            rate = trial.hyperparameters.values.get("learning_rate")
            self._fail(trial, f"{diverged[1]} loss at epoch {diverged[0]} (learning_rate {rate})")
        return histories

    def _fail(self, trial: Any, cause: str, error: BaseException | None = None) -> None:
        self.failure_causes.append(cause)
        log.info("tune: trial %s failed: %s", trial.trial_id, cause)
        raise keras_tuner.errors.FailedTrialError(f"trial {trial.trial_id}: {cause}") from error

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        log.info("tune: trial %s started", trial.trial_id)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        if self.state_sync is not None:
            self.state_sync.upload_changed(Path(self.project_dir).parent)
        if self._is_worker():  # the score lives in the chief's oracle; ask it (one gRPC call)
            trial = self.oracle.get_trial(trial.trial_id)
        score = "n/a" if trial.score is None else f"{trial.score:.4f}"
        # a distributed worker's oracle is a gRPC client without the trial list: no count there
        trials = getattr(self.oracle, "trials", None) if not self._is_worker() else None
        progress = "" if trials is None else (
            f" ({sum(1 for t in trials.values() if t.status != 'RUNNING')}/{self.expected_trials} scheduled)"
        )
        log.info(
            "tune: trial %s%s %s, %s=%s, %d epochs",
            trial.trial_id, progress, trial.status.lower(), self.oracle.objective.name, score,
            trial.hyperparameters.values.get(EPOCHS_HP, 0),
        )


class PipelineHyperbandOracle(WholeFileOracleMixin, keras_tuner.oracles.HyperbandOracle):
    """Keras Tuner's Hyperband oracle, its state files replaced whole."""


class PipelineHyperband(PipelineTunerMixin, keras_tuner.Hyperband):
    """Hyperband with the pipeline's failed-trial detection, whole state files, state mirror and progress lines.

    Takes ``keras_tuner.Hyperband``'s arguments, with the same defaults. ``keras_tuner.Hyperband.__init__``
    only builds a ``HyperbandOracle`` and hands it to ``keras_tuner.Tuner.__init__``; this one hands over a
    :class:`PipelineHyperbandOracle` instead (``Tuner(oracle=...)`` is Keras Tuner's way to give a tuner
    its own oracle). Hyperband's trial running (epochs per round, the parent's checkpoint) is inherited.
    """

    def __init__(
        self, hypermodel: Any = None, objective: Any = None, max_epochs: int = 100, factor: int = 3,
        hyperband_iterations: int = 1, seed: int | None = None, hyperparameters: Any = None,
        tune_new_entries: bool = True, allow_new_entries: bool = True, max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3, **kwargs: Any,
    ) -> None:
        oracle = PipelineHyperbandOracle(
            objective, max_epochs=max_epochs, factor=factor, hyperband_iterations=hyperband_iterations, seed=seed,
            hyperparameters=hyperparameters, tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial, max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


# The search algorithms build_tuner offers, by name; each is PipelineTunerMixin over a Keras Tuner class.
TUNER_CLASSES: dict[str, type[PipelineTunerMixin]] = {"hyperband": PipelineHyperband}
# The algorithm build_tuner uses unless told otherwise (the only one the configuration names today).
DEFAULT_ALGORITHM = "hyperband"


@dataclass(frozen=True)
class TuningResult:
    """The best hyperparameters (``get_config()`` form), their score and every trial.

    ``best_trial`` is the oracle's best trial's id and ``trial_configs`` every trial's
    hyperparameters (``get_config()`` form) by id, for choosing another trial afterwards
    (:mod:`tunepipe.modelling.preference`) without reloading the tuner.
    """

    best_hyperparameters: dict[str, Any]
    best_score: float
    trials: pd.DataFrame
    direction: str = "min"
    resumed_trials: int = 0  # completed trials found in the tuner directory when the search began
    best_trial: str = ""
    trial_configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _root_bracket(oracle: keras_tuner.Oracle, trial: Any) -> Any:
    """The bracket of the round-0 trial a promoted trial continues.

    Keras Tuner stamps a promoted trial with the bracket counter current when it was created,
    which is not always the bracket of the models it continues; the lineage is what matters.
    """
    seen = set()
    while PARENT_HP in trial.hyperparameters.values and trial.trial_id not in seen:
        seen.add(trial.trial_id)
        parent = oracle.trials.get(trial.hyperparameters.values[PARENT_HP])
        if parent is None:
            break
        trial = parent
    return trial.hyperparameters.values.get(BRACKET_HP)


def trial_table(oracle: keras_tuner.Oracle) -> pd.DataFrame:
    """One row per trial, best first: id, status, score, epochs, bracket (of its lineage), round, the failure
    cause of a failed trial, then the hyperparameters."""
    rows = []
    for trial in oracle.trials.values():
        values = trial.hyperparameters.values
        row = {
            "trial_id": trial.trial_id, "status": trial.status, "score": trial.score,
            "epochs": values.get(EPOCHS_HP), "bracket": _root_bracket(oracle, trial), "round": values.get(ROUND_HP),
            "failure": failure_cause(trial),
        }
        row.update(values)
        rows.append(row)
    table = pd.DataFrame(rows)
    ascending = oracle.objective.direction == "min"
    return table.sort_values("score", ascending=ascending, na_position="last").reset_index(drop=True)


def build_tuner(
    hypermodel: keras_tuner.HyperModel, config: TuningConfig, seed: int, directory: str | Path,
    algorithm: str = DEFAULT_ALGORITHM,
) -> PipelineTunerMixin:
    """The tuner over ``directory/hyperband``; an existing search there is reloaded.

    Its state files are replaced whole (:class:`WholeFileOracleMixin`, :meth:`PipelineTunerMixin.save`).
    ``overwrite=False`` is what makes tuning resumable: Keras Tuner keeps the completed trials
    it finds and re-queues the one that was running when the process died.

    Args:
        algorithm: Key of :data:`TUNER_CLASSES` (default ``hyperband``, the only one the
            pipeline's configuration offers; its budget arguments are Hyperband's).
    """
    direction = "min" if config.objective == "val_loss" else "max"
    tuner = TUNER_CLASSES[algorithm](
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(config.objective, direction),
        max_epochs=config.max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        max_consecutive_failed_trials=config.max_consecutive_failed_trials,
        seed=seed,
        directory=str(directory),
        project_name=PROJECT_NAME,
        overwrite=False,
    )
    tuner.expected_trials = hyperband_budget(config.max_epochs, config.factor, config.hyperband_iterations).trials
    return tuner


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops a fit at the end of the first epoch whose training or validation loss is NaN or infinite.

    Used instead of ``keras.callbacks.TerminateOnNaN``, which checks every batch: a batch-level
    callback makes Keras hand each step's logs back to Python, and on the short fits of small
    data (1 step per call) that cost the default search about 3.5 s of its ~50 (measured with
    bench/tune_overhead.py's tunepipe side, 2 runs each way, 2026-12-03). A diverging trial now
    runs to the end of its epoch, a few milliseconds on such data, before it is failed.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        losses = [float(value) for name, value in (logs or {}).items() if name in ("loss", "val_loss")]
        if any(not math.isfinite(value) for value in losses):
            self.model.stop_training = True


def search_callbacks(config: TuningConfig) -> list[keras.callbacks.Callback]:
    """In-trial early stopping, and a stop at the end of the epoch in which the loss went non-finite."""
    return [keras.callbacks.EarlyStopping(monitor=config.objective, patience=config.patience),
            StopOnNonFiniteLoss()]


def collect_result(oracle: keras_tuner.Oracle) -> TuningResult:
    """The best completed trial and the trial table, from a finished (or reloaded) oracle."""
    best = [t for t in oracle.get_best_trials(1) if t.status == "COMPLETED" and t.score is not None]
    if not best:
        raise TuningError(f"tuning finished without a successful trial ({len(oracle.trials)} trials ran)")
    return TuningResult(
        best[0].hyperparameters.get_config(), float(best[0].score), trial_table(oracle), oracle.objective.direction,
        best_trial=best[0].trial_id,
        trial_configs={trial_id: trial.hyperparameters.get_config() for trial_id, trial in oracle.trials.items()},
    )


def run_tuning(
    hypermodel: keras_tuner.HyperModel,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    validation: tuple[dict[str, np.ndarray], np.ndarray],
    config: TuningConfig,
    seed: int,
    work_dir: str | Path,
    state_sync: TunerStateSync | None = None,
) -> TuningResult:
    """Runs (or resumes) Hyperband in this process and returns the best hyperparameters.

    Args:
        hypermodel: Builds and fits one model per trial.
        train: Training inputs and targets.
        validation: Validation inputs and targets; the objective is measured on them.
        config: Hyperband budget, objective, in-trial patience and the failure limit.
        seed: Seeds Keras and the oracle; the same seed and data give the same search.
        work_dir: Tuner state (trials and checkpoints); an existing search there is resumed.
        state_sync: Mirror of ``work_dir`` in the object store: downloaded before the search,
            uploaded after every trial. ``None`` when ``work_dir`` is itself the durable place.

    Raises:
        TuningError: Too many trials failed in a row, or none succeeded.
    """
    keras.utils.set_random_seed(seed)
    budget = hyperband_budget(config.max_epochs, config.factor, config.hyperband_iterations)
    log.info(
        "tune: Hyperband max_epochs=%d factor=%d iterations=%d schedules %d trials, %d epochs",
        config.max_epochs, config.factor, config.hyperband_iterations, budget.trials, budget.epochs,
    )
    if state_sync is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        log.info("tune: %d files of earlier tuner state from %s", state_sync.download_all(Path(work_dir)),
                 state_sync.remote)
    tuner = build_tuner(hypermodel, config, seed, work_dir)
    tuner.state_sync = state_sync
    done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    if done:
        log.info("tune: resuming a search with %d completed trials in %s", done, work_dir)
    try:
        tuner.search(*train, validation_data=validation, callbacks=search_callbacks(config), verbose=0)
    except RuntimeError as error:
        if _TOO_MANY_FAILURES not in str(error):
            raise
        cause = tuner.failure_causes[-1] if tuner.failure_causes else str(error).splitlines()[-1]
        raise TuningError(
            f"tuning stopped after {config.max_consecutive_failed_trials} failed trials in a row "
            f"(tuning.max_consecutive_failed_trials); last cause: {cause}"
        ) from None
    if state_sync is not None:
        state_sync.upload_changed(Path(work_dir))
    return dataclasses.replace(collect_result(tuner.oracle), resumed_trials=done)


def save_tuning(result: TuningResult, best_path: str | Path, trials_path: str | Path) -> None:
    """Writes the best hyperparameters (JSON) and the trial table (CSV)."""
    atomic.write_text(best_path, json.dumps(result.best_hyperparameters, indent=2))
    with atomic.replacing(trials_path) as partial:
        result.trials.to_csv(partial, index=False)


def load_hyperparameters(path: str | Path) -> keras_tuner.HyperParameters:
    """Reads hyperparameters written by :func:`save_tuning`."""
    return keras_tuner.HyperParameters.from_config(json.loads(Path(path).read_text()))
