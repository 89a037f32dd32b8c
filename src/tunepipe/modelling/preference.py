"""Cost-aware choice among the tuned trials: the smallest or fastest model whose score is as good
as the best's within the noise of the validation split.

Every completed trial gets its serving cost measured after the search: its parameter count and
its prediction latency per row at batch 1 and batch 256 (a compiled ``predict_on_batch`` on
validation rows, median of repeated calls; the architecture decides both, so trials that differ
only in training settings share one measurement).

**Within the noise of the best** means within one standard error of the best trial's score on
the validation rows (the one-standard-error rule of Breiman et al., *Classification and
Regression Trees*, 1984): the best trial's model is reloaded from its checkpoint and scored row
by row (its loss per row for ``val_loss``, right or wrong for ``val_accuracy``), and the band is
the standard deviation of those values over the square root of the rows. With ``tuning.prefer``
``smallest`` (fewest parameters) or ``fastest`` (lowest latency per row at batch 1, what an
online model server pays per request), the choice is made among the trials inside the band;
``best`` (default) keeps the best score.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.config import TuningConfig
from tunepipe.modelling.tune import TuningResult, build_tuner
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

# Calls timed per batch size; the median is kept (the first call, which compiles, is not timed).
LATENCY_CALLS = {1: 20, 256: 5}
# Trial-table columns of the cost (latencies in microseconds per row).
COST_COLUMNS = ("parameters", "latency_b1_us", "latency_b256_us")
# What prefer minimises within the band.
PREFERRED_COLUMN = {"smallest": "parameters", "fastest": "latency_b1_us"}


@dataclass(frozen=True)
class Choice:
    """Which trial was picked, by which rule, against the best one (written as ``choice.json``)."""

    prefer: str
    objective: str
    best_trial: str
    best_score: float
    noise: float
    chosen_trial: str
    chosen_score: float
    parameters: int
    latency_b1_us: float
    latency_b256_us: float
    candidates: int  # trials inside the band

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, json.dumps(asdict(self), indent=2))


def _median_call_seconds(model: keras.Model, inputs: dict[str, np.ndarray], repeats: int) -> float:
    model.predict_on_batch(inputs)  # compiles the predict function for this shape: not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_cost(model: keras.Model, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Parameters and latency per row (microseconds) at batch 1 and 256 of ``model`` on ``inputs``'
    rows (repeated up to 256 rows when there are fewer)."""
    rows = len(next(iter(inputs.values())))
    cost: dict[str, float] = {"parameters": float(model.count_params())}
    for batch, repeats in LATENCY_CALLS.items():
        take = np.arange(batch) % rows
        seconds = _median_call_seconds(model, {name: values[take] for name, values in inputs.items()}, repeats)
        cost[f"latency_b{batch}_us"] = seconds / batch * 1e6
    return cost


def _architecture(values: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in sorted(values.items()) if not k.startswith("tuner/")}, default=str)


def trial_costs(
    hypermodel: keras_tuner.HyperModel, trials: pd.DataFrame, hyperparameters: dict[str, dict[str, Any]],
    inputs: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The trial table with :data:`COST_COLUMNS` filled for each completed trial.

    Args:
        hypermodel: Builds each trial's model (untrained: weights change neither size nor speed).
        trials: The trial table (:func:`tunepipe.modelling.tune.trial_table`).
        hyperparameters: Trial id to its hyperparameters' ``get_config()``.
        inputs: Validation inputs, the rows the latency is measured on.
    """
    measured: dict[str, dict[str, float]] = {}
    costs = []
    start = time.perf_counter()
    for trial_id, status in zip(trials["trial_id"], trials["status"], strict=True):
        if status != "COMPLETED":
            costs.append(dict.fromkeys(COST_COLUMNS, float("nan")))
            continue
        config = hyperparameters[trial_id]
        key = _architecture(config["values"])
        if key not in measured:
            measured[key] = measure_cost(hypermodel.build(keras_tuner.HyperParameters.from_config(config)), inputs)
        costs.append(measured[key])
    log.info("tune: measured size and latency of %d architectures in %.1f s", len(measured),
             time.perf_counter() - start)
    return trials.assign(**{column: [cost[column] for cost in costs] for column in COST_COLUMNS})


def per_row_objective(model: keras.Model, objective: str, inputs: dict[str, np.ndarray], y: np.ndarray
                      ) -> np.ndarray:
    """The objective row by row: each row's loss (``val_loss``) or 1/0 for right/wrong (``val_accuracy``)."""
    predictions = np.asarray(model.predict(inputs, verbose=0, batch_size=1024))
    if objective == "val_accuracy":
        return (predictions.argmax(axis=1) == y.astype(int)).astype(np.float64)
    loss = model.loss
    function = loss.call if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)
    return np.asarray(keras.ops.convert_to_numpy(function(keras.ops.convert_to_tensor(y), predictions)),
                      dtype=np.float64).ravel()


def standard_error(values: np.ndarray) -> float:
    """Standard deviation (ddof 1) over the square root of the count; 0 for fewer than 2 values."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def pick(trials: pd.DataFrame, prefer: str, direction: str, noise: float, best_id: str) -> tuple[str, int]:
    """The chosen trial id and how many completed trials lie within ``noise`` of the best one's score.

    ``best_id`` is the oracle's best trial (:attr:`TuningResult.best_trial`), which ``best``
    returns as is. Ties on the preferred cost go to the better score, then to the best trial, so
    ``noise`` 0 picks the best trial.
    """
    done = trials[(trials["status"] == "COMPLETED") & trials["score"].notna()]
    best = float(done.loc[done["trial_id"] == best_id, "score"].iloc[0])
    inside = done[(done["score"] <= best + noise) if direction == "min" else (done["score"] >= best - noise)]
    if prefer == "best":
        return best_id, len(inside)
    ranked = inside.assign(_rank=inside["score"] if direction == "min" else -inside["score"],
                           _not_best=inside["trial_id"] != best_id)
    ordered = ranked.sort_values([PREFERRED_COLUMN[prefer], "_rank", "_not_best"], kind="stable")
    return str(ordered["trial_id"].iloc[0]), len(inside)


def choose(
    result: TuningResult, hypermodel: keras_tuner.HyperModel, validation: tuple[dict[str, np.ndarray], np.ndarray],
    tuning: TuningConfig, seed: int, work_dir: str | Path, prefer: str,
) -> tuple[TuningResult, Choice]:
    """Measures every trial's cost and applies ``prefer`` within one standard error of the best.

    Args:
        result: The finished search (best trial, its hyperparameters, every trial's).
        hypermodel, tuning, seed, work_dir: Build the trials' models; with ``prefer`` other than
            ``best``, rebuild the tuner over the search's directory to reload the best trial's
            checkpoint.
        validation: Validation inputs and targets (the band and the latency are measured on them).
        prefer: ``best``, ``smallest`` or ``fastest``.

    Returns:
        The result with the chosen trial's hyperparameters (``best_score`` stays the best trial's)
        and its table holding the costs; and the :class:`Choice`.
    """
    configs, best_id = result.trial_configs, result.best_trial
    trials = trial_costs(hypermodel, result.trials, configs, validation[0])
    noise = 0.0
    if prefer != "best":
        tuner = build_tuner(hypermodel, tuning, seed, work_dir)
        with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed to predict
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            best_model = tuner.load_model(tuner.oracle.get_trial(best_id))
        noise = standard_error(per_row_objective(best_model, tuning.objective, *validation))
    chosen_id, candidates = pick(trials, prefer, result.direction, noise, best_id)
    rows: dict[Any, dict[Any, Any]] = trials.set_index("trial_id").to_dict("index")
    row = rows[chosen_id]
    choice = Choice(prefer, tuning.objective, best_id, float(rows[best_id]["score"]), noise, chosen_id,
                    float(row["score"]), int(row["parameters"]), float(row["latency_b1_us"]),
                    float(row["latency_b256_us"]), candidates)
    if chosen_id != best_id:
        log.info("tune: prefer %s picked trial %s (%d parameters, %.0f us/row) over the best, trial %s, within "
                 "the noise band %.4f", prefer, chosen_id, choice.parameters, choice.latency_b1_us, best_id, noise)
    return replace(result, best_hyperparameters=configs[chosen_id], trials=trials), choice
