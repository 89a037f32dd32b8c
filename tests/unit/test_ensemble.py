"""The model exported on small data: the bagged average of the fold models, the refit, the single model."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
from penguin_splits import penguin_splits, write_best

import tunepipe
from tunepipe import artifacts, train_step
from tunepipe.config import (
    EvaluationConfig,
    FloatRange,
    IntRange,
    SearchSpace,
    TrainingConfig,
    validate_section,
)
from tunepipe.data.features import model_inputs, raw_inputs
from tunepipe.data.preprocess import read_spec
from tunepipe.data.split import Split
from tunepipe.errors import ConfigError
from tunepipe.evaluation import crossval
from tunepipe.modelling import ensemble
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing.export import export_model

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=8, max=8), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
)
TRAINING = TrainingConfig(max_epochs=3, patience=1, lr_patience=1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Penguins ingested and split, and the one configuration of SPACE as the best hyperparameters."""
    root = tmp_path_factory.mktemp("penguins")
    penguin_splits(root)
    write_best(root, SPACE)
    return root


def _network(root: Path, seed: int = 0) -> keras.Model:
    """One untrained network of the configuration (``seed`` sets its initial weights)."""
    keras.utils.set_random_seed(seed)
    return TabularHyperModel(read_spec(root / "spec"), SPACE).build(keras_tuner.HyperParameters())


def test_the_bagged_model_outputs_the_mean_of_its_members_and_survives_a_save(prepared, tmp_path) -> None:
    members, spec = [_network(prepared, seed) for seed in range(3)], read_spec(prepared / "spec")
    rows = model_inputs(Split.open(prepared / artifacts.TEST).frame(), spec)
    bagged = ensemble.average(members)
    each = [np.asarray(member.predict(rows, verbose=0)) for member in members]
    assert not np.allclose(each[0], each[1])
    np.testing.assert_allclose(np.asarray(bagged.predict(rows, verbose=0)), np.mean(each, axis=0), atol=1e-6)
    assert bagged.count_params() == 3 * members[0].count_params()
    bagged.save(tmp_path / "bagged.keras")
    reloaded = keras.models.load_model(tmp_path / "bagged.keras")
    np.testing.assert_allclose(np.asarray(reloaded.predict(rows, verbose=0)), np.mean(each, axis=0), atol=1e-6)


def test_a_bagged_model_publishes_as_one_saved_model_with_one_signature(prepared, tmp_path) -> None:
    import tensorflow as tf

    spec = read_spec(prepared / "spec")
    bagged = ensemble.average([_network(prepared, seed) for seed in range(2)])
    test = Split.open(prepared / artifacts.TEST).frame()
    card = {"task": "classification", "metrics": {"accuracy": 0.5}}
    version = Path(export_model(bagged, spec, str(tmp_path), "penguins", card, test).location)
    served = tf.saved_model.load(str(version))
    feeds = {name: tf.constant(np.asarray(values).reshape(-1)) for name, values in raw_inputs(test, spec).items()}
    probabilities = served.signatures["serving_default"](**feeds)["probabilities"].numpy()
    expected = np.asarray(bagged.predict(model_inputs(test, spec), verbose=0))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)  # the preprocessing inside, raw rows in


def test_average_needs_a_member() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        ensemble.average([])


def _train(root: Path, out: Path, kind: str, settings: EvaluationConfig | None) -> dict:
    inputs = train_step.Inputs(root / artifacts.TRAIN, root / artifacts.VALIDATION, root / "spec", root / "best",
                               TRAINING.model_copy(update={"small_data_model": kind}), SPACE, 0,
                               cross_validation=settings)
    summary = train_step.run(inputs, train_step.Outputs(out / "model", out / "history")).metadata["model"]
    history = json.loads((out / "history" / artifacts.HISTORY_FILE).read_text())
    return {"summary": summary, "model": history[artifacts.HISTORY_MODEL],
            "model_file": keras.models.load_model(out / "model" / artifacts.MODEL_FILE),
            "cv": out / "history" / artifacts.CROSS_VALIDATION_FILE}


def _content(frame: pd.DataFrame) -> set[int]:
    return set(pd.util.hash_pandas_object(frame, index=False).tolist())


def test_on_small_data_train_exports_the_average_of_the_fold_models_none_of_which_saw_the_test_split(
    prepared, tmp_path, monkeypatch,
) -> None:
    fitted_rows: list[pd.DataFrame] = []
    real_inputs = crossval.model_inputs
    monkeypatch.setattr(crossval, "model_inputs",
                        lambda rows, spec: fitted_rows.append(rows) or real_inputs(rows, spec))
    trained = _train(prepared, tmp_path, ensemble.BAGGED, EvaluationConfig(cv_folds=2))
    train_and_validation = sum(Split.open(prepared / name).rows for name in (artifacts.TRAIN, artifacts.VALIDATION))
    assert trained["summary"][artifacts.META_MODEL_KIND] == "bagged"
    described = trained["model"]
    assert (described["kind"], described["members"], described["rows"]) == ("bagged", 2, train_and_validation)
    assert described["epochs"] == trained["summary"][artifacts.META_BEST_EPOCH]
    assert described["cost"]["parameters"] == trained["model_file"].count_params()
    assert trained["model_file"].count_params() == 2 * _network(prepared).count_params()
    cv = json.loads(trained["cv"].read_text())
    assert (cv["folds"], cv["rows"]) == (2, train_and_validation)
    test_rows = _content(Split.open(prepared / artifacts.TEST).frame())
    assert len(fitted_rows) == 4  # per fold: the rows fitted on, the rows scored
    assert all(not (_content(rows) & test_rows) for rows in fitted_rows)


@pytest.mark.parametrize("kind", [ensemble.REFIT, ensemble.SINGLE])
def test_refit_and_single_export_one_network(prepared, tmp_path, kind) -> None:
    trained = _train(prepared, tmp_path, kind, EvaluationConfig(cv_folds=2))
    assert trained["model"]["kind"] == kind and trained["model"]["members"] == 1
    assert trained["model_file"].count_params() == _network(prepared).count_params()
    assert trained["cv"].is_file()  # the cross-validation figures either way


def test_larger_data_keeps_the_single_model_without_cross_validation(prepared, tmp_path) -> None:
    trained = _train(prepared, tmp_path, ensemble.BAGGED, EvaluationConfig(cv_folds=2, cv_max_rows=100))
    assert trained["model"]["kind"] == "single" and trained["model"]["members"] == 1
    assert not trained["cv"].exists()


def test_small_data_model_takes_one_of_three_values() -> None:
    assert TrainingConfig().small_data_model == "bagged"
    with pytest.raises(ConfigError, match="small_data_model"):
        validate_section(TrainingConfig, {"small_data_model": "boosted"}, "parameters")
