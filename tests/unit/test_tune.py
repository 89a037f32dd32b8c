"""Hyperband search: best hyperparameters, trial table and resuming."""

from __future__ import annotations

import html
import json
import math

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, TuningConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.errors import TuningError
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.tune import (
    StopOnNonFiniteLoss,
    is_out_of_memory,
    load_hyperparameters,
    nan_loss_epoch,
    non_finite_loss,
    run_tuning,
    save_tuning,
    search_callbacks,
)
from tunepipe.reports.tuning_report import tuning_report_html

pytestmark = pytest.mark.unit

SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1),
    units=IntRange(min=4, max=16, step=4),
    activation=["relu", "tanh"],
    dropout=FloatRange(min=0.0, max=0.0),
    learning_rate=FloatRange(min=1e-3, max=3e-2, sampling="log"),
    batch_size=[16, 32],
)
TUNING = TuningConfig(max_epochs=2, factor=3, patience=1)


def _separable(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, rows, 1)).astype(np.float32)
    labels = ((a + b)[:, 0] > 0).astype(np.int32)
    return {"a": a, "b": b}, labels


@pytest.fixture(scope="module")
def hypermodel() -> TabularHyperModel:
    spec = PreprocessingSpec(
        "classification", "y", [NumericFeature("a", "a", 0.0, 1.0), NumericFeature("b", "b", 0.0, 1.0)],
        classes=["neg", "pos"],
    )
    return TabularHyperModel(spec, SPACE)


@pytest.fixture(scope="module")
def tuned(hypermodel, tmp_path_factory):
    keras.utils.set_random_seed(0)
    work_dir = tmp_path_factory.mktemp("tuner")
    result = run_tuning(hypermodel, _separable(96, 0), _separable(48, 1), TUNING, seed=0, work_dir=work_dir)
    return result, work_dir


def test_best_hyperparameters_round_trip(tuned, hypermodel) -> None:
    result, _ = tuned
    restored = keras_tuner.HyperParameters.from_config(result.best_hyperparameters)
    assert restored.get_config() == result.best_hyperparameters
    assert restored.values["tuner/epochs"] == TUNING.max_epochs
    assert 4 <= restored.get("units") <= 16
    assert restored.get("activation") in ("relu", "tanh")
    assert restored.get("batch_size") in (16, 32)
    model = hypermodel.build(restored)
    assert [layer.units for layer in model.layers if layer.name.startswith("hidden_")] == [restored.get("units")]


def test_trial_table_has_one_row_per_trial_best_first(tuned) -> None:
    result, _ = tuned
    table = result.trials
    assert len(table) == hyperband_budget(TUNING.max_epochs, TUNING.factor).trials
    assert table["trial_id"].is_unique
    assert set(table["status"]) == {"COMPLETED"}
    assert {"score", "units", "learning_rate", "batch_size"} <= set(table.columns)
    assert table["score"].is_monotonic_increasing  # val_loss: smaller is better, best first
    assert result.best_score == pytest.approx(table["score"].iloc[0])
    assert np.isfinite(result.best_score)


def test_search_resumes_without_new_trials(tuned, hypermodel) -> None:
    result, work_dir = tuned
    trial_files = sorted(p.parent.name for p in work_dir.rglob("trial.json"))
    again = run_tuning(hypermodel, _separable(96, 0), _separable(48, 1), TUNING, seed=0, work_dir=work_dir)
    assert len(again.trials) == len(result.trials)
    assert sorted(p.parent.name for p in work_dir.rglob("trial.json")) == trial_files
    assert again.best_hyperparameters == result.best_hyperparameters
    assert again.best_score == pytest.approx(result.best_score)


def test_save_and_load_tuning(tuned, tmp_path) -> None:
    result, _ = tuned
    best_path, trials_path = tmp_path / artifacts.BEST_HYPERPARAMETERS_FILE, tmp_path / artifacts.TRIALS_FILE
    save_tuning(result, best_path, trials_path)
    assert json.loads(best_path.read_text()) == result.best_hyperparameters
    loaded = load_hyperparameters(best_path)
    assert loaded.values == keras_tuner.HyperParameters.from_config(result.best_hyperparameters).values
    table = pd.read_csv(trials_path, dtype={"trial_id": str})
    assert len(table) == len(result.trials)
    assert table["trial_id"].tolist() == result.trials["trial_id"].tolist()


def test_nan_loss_fails_trials_and_too_many_stop_the_search_naming_the_cause(hypermodel, tmp_path) -> None:
    diverging = SearchSpace(
        hidden_layers=1, units=8, activation=["relu"], dropout=0.0, optimizer=["sgd"], learning_rate=1e12,
        batch_size=[16],
    )
    config = TuningConfig(max_epochs=3, factor=3, patience=5, max_consecutive_failed_trials=2)
    # the epoch that went non-finite ends the fit; its mean loss is inf, or NaN once inf - inf met
    with pytest.raises(TuningError, match=r"2 failed trials in a row.*max_consecutive_failed_trials.*(NaN|inf) loss"):
        run_tuning(
            TabularHyperModel(hypermodel.spec, diverging), _separable(96, 0), _separable(48, 1), config,
            seed=0, work_dir=tmp_path,
        )


class _ImpossibleOnTanh(TabularHyperModel):
    """Every tanh model asks the allocator for a 10^8 x 10^8 float kernel (40 PB): a real allocation failure."""

    def build(self, hp):
        model = super().build(hp)
        if hp.get("activation") == "tanh":
            keras.layers.Dense(10**8).build((None, 10**8))
        return model


def test_a_real_allocation_failure_fails_the_trial_not_the_search(hypermodel, tmp_path) -> None:
    greedy = _ImpossibleOnTanh(hypermodel.spec, SPACE)
    config = TuningConfig(max_epochs=3, factor=3, patience=1, max_consecutive_failed_trials=10)
    result = run_tuning(greedy, _separable(96, 0), _separable(48, 1), config, seed=0, work_dir=tmp_path)
    table = result.trials
    failed = table[table["status"] == "FAILED"]
    assert len(failed) >= 1 and set(failed["activation"]) == {"tanh"}
    assert failed["failure"].str.contains("out of memory: .*OOM when allocating tensor", regex=True).all()
    assert set(table[table["status"] == "COMPLETED"]["activation"]) == {"relu"}
    assert keras_tuner.HyperParameters.from_config(result.best_hyperparameters).get("activation") == "relu"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MemoryError(), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (RuntimeError("RESOURCE_EXHAUSTED: failed to allocate"), True),
        (type("ResourceExhaustedError", (Exception,), {})("x"), True),
        (ValueError("shapes (3,) and (4,) are incompatible"), False),
    ],
)
def test_out_of_memory_recognized_across_backends(error: BaseException, expected: bool) -> None:
    assert is_out_of_memory(error) is expected


def test_nan_loss_epoch() -> None:
    history = keras.callbacks.History()
    history.history = {"loss": [0.5, float("nan")], "val_loss": [0.6, 0.7]}
    assert nan_loss_epoch([history]) == 2
    history.history = {"loss": [0.5, 0.4], "val_loss": [0.6, float("inf")]}
    assert nan_loss_epoch(history) == 2
    history.history = {"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]}
    assert nan_loss_epoch([history]) is None


def test_search_stops_a_diverging_fit_at_the_end_of_its_first_non_finite_epoch() -> None:
    """The stop is among the search callbacks, acts on inf as on NaN, and checks epochs, not batches."""
    callbacks = search_callbacks(TUNING)
    stops = [c for c in callbacks if isinstance(c, StopOnNonFiniteLoss)]
    assert len(stops) == 1 and not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks)
    assert not any(type(c).on_train_batch_end is not keras.callbacks.Callback.on_train_batch_end for c in callbacks)
    keras.utils.set_random_seed(0)
    x, _ = _separable(64, 0)
    huge = np.full((64, 1), 3e38, np.float32)  # squared, the regression loss overflows float32 to inf
    regression = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    regression.compile(optimizer="sgd", loss="mse")
    history = regression.fit(np.hstack([x["a"], x["b"]]), huge, epochs=5, batch_size=16, verbose=0, callbacks=stops)
    assert len(history.history["loss"]) == 1 and not math.isfinite(history.history["loss"][0])  # stopped in epoch 1
    assert non_finite_loss(history) == (1, "inf" if math.isinf(history.history["loss"][0]) else "NaN")


def test_a_non_finite_validation_loss_stops_the_fit_too() -> None:
    stop = StopOnNonFiniteLoss()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what fit() sets before the first epoch
    stop.set_model(model)
    stop.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.4})
    assert not stop.model.stop_training
    stop.on_epoch_end(1, {"loss": 0.5, "val_loss": float("nan")})
    assert stop.model.stop_training


def test_diverging_trials_fail_alone_and_the_table_and_report_say_why(hypermodel, tmp_path) -> None:
    """Some learning rates blow the loss up: those trials fail (NaN or inf), the others complete."""
    space = SearchSpace(
        hidden_layers=1, units=8, activation=["relu"], dropout=0.0, optimizer=["sgd"],
        learning_rate=FloatRange(min=1e-2, max=1e12, sampling="log"), batch_size=[16],
    )
    config = TuningConfig(max_epochs=3, factor=3, patience=5, max_consecutive_failed_trials=10)
    result = run_tuning(TabularHyperModel(hypermodel.spec, space), _separable(96, 0), _separable(48, 1), config,
                        seed=1, work_dir=tmp_path)
    table = result.trials
    failed, completed = table[table["status"] == "FAILED"], table[table["status"] == "COMPLETED"]
    assert len(failed) >= 1 and len(completed) >= 1, table[["status", "learning_rate", "failure"]]
    assert failed["failure"].str.contains(r"(?:NaN|inf) loss at epoch \d+ \(learning_rate", regex=True).all()
    assert completed["failure"].isna().all()
    assert failed["learning_rate"].min() > completed["learning_rate"].min()
    assert np.isfinite(result.best_score)
    page = tuning_report_html(table, "val_loss", "min", "budget")
    assert "<th>failure</th>" in page and html.escape(failed["failure"].iloc[0]) in page
