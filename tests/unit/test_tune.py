"""Hyperband search: best hyperparameters, trial table and resuming."""

from __future__ import annotations

import json

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, TuningConfig
from tunepipe.features import NumericFeature, PreprocessingSpec
from tunepipe.hyperband import hyperband_budget
from tunepipe.model import TabularHyperModel
from tunepipe.tune import load_hyperparameters, run_tuning, save_tuning

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
