"""The one hypermodel that serves tuning and final training."""

from __future__ import annotations

import math

import keras
import keras_tuner
import numpy as np
import pytest

from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.data.features import CategoricalFeature, ImageFeature, NumericFeature, PreprocessingSpec
from tunepipe.modelling.hyperparameters import (
    LARGE_VALIDATION_BATCH,
    MAX_STEPS_PER_EXECUTION,
    SHORT_FIT_STEPS,
    STEPS_PER_EXECUTION,
    steps_per_execution_for,
)
from tunepipe.modelling.image_model import ImageHyperModel
from tunepipe.modelling.model import TabularHyperModel

pytestmark = pytest.mark.unit

NUMERIC = [NumericFeature("a", "a", 10.0, 4.0), NumericFeature("b b", "b_b", -2.0, 0.25)]
CATEGORICAL = [CategoricalFeature("colour", "colour", ["red", "blue", "green"]), CategoricalFeature("s", "s", ["x"])]
SMALL = SearchSpace(
    hidden_layers=IntRange(min=1, max=2),
    units=IntRange(min=4, max=8, step=4),
    activation=["relu", "tanh"],
    batch_size=[4, 16],
)


def _inputs(spec: PreprocessingSpec, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for feature in spec.numeric:
        values = rng.normal(feature.mean, math.sqrt(feature.variance), size=(rows, 1))
        inputs[feature.input_name] = values.astype(np.float32)
    for cat in spec.categorical:
        inputs[cat.input_name] = rng.integers(0, len(cat.vocabulary) + 1, size=(rows, 1)).astype(np.int32)
    return inputs


def _classification(numeric: bool, categorical: bool) -> PreprocessingSpec:
    return PreprocessingSpec(
        "classification", "y",
        NUMERIC if numeric else [], CATEGORICAL if categorical else [],
        classes=["p", "q", "r"],
    )


@pytest.mark.parametrize(("numeric", "categorical"), [(True, False), (False, True), (True, True)])
def test_classification_model_outputs_probabilities(numeric: bool, categorical: bool) -> None:
    keras.utils.set_random_seed(0)
    spec = _classification(numeric, categorical)
    model = TabularHyperModel(spec, SMALL).build(keras_tuner.HyperParameters())
    expected_inputs = {f.input_name for f in spec.numeric} | {c.input_name for c in spec.categorical}
    assert {tensor.name for tensor in model.inputs} == expected_inputs
    outputs = np.asarray(model.predict(_inputs(spec, 7), verbose=0))
    assert outputs.shape == (7, 3)
    np.testing.assert_allclose(outputs.sum(axis=1), np.ones(7), atol=1e-5)
    assert (outputs >= 0).all()


@pytest.mark.parametrize(("numeric", "categorical"), [(True, False), (False, True), (True, True)])
def test_regression_model_outputs_one_value(numeric: bool, categorical: bool) -> None:
    keras.utils.set_random_seed(0)
    spec = PreprocessingSpec(
        "regression", "y", NUMERIC if numeric else [], CATEGORICAL if categorical else [],
        label_mean=100.0, label_std=5.0,
    )
    model = TabularHyperModel(spec, SMALL).build(keras_tuner.HyperParameters())
    outputs = np.asarray(model.predict(_inputs(spec, 6), verbose=0))
    assert outputs.shape == (6, 1)
    assert model.loss == "mse"


def test_normalization_uses_spec_statistics() -> None:
    spec = _classification(numeric=True, categorical=False)
    model = TabularHyperModel(spec, SMALL).build(keras_tuner.HyperParameters())
    normalize = keras.Model(model.inputs, model.get_layer("normalize").output)
    # one standard deviation above each mean -> 1, the mean itself -> 0
    feeds = {
        "a": np.array([[10.0 + 2.0], [10.0]], dtype=np.float32),
        "b_b": np.array([[-2.0 + 0.5], [-2.0]], dtype=np.float32),
    }
    np.testing.assert_allclose(np.asarray(normalize.predict(feeds, verbose=0)), [[1.0, 1.0], [0.0, 0.0]], atol=1e-5)


def test_regression_head_maps_standardized_output_to_label_units() -> None:
    spec = PreprocessingSpec("regression", "y", NUMERIC, label_mean=250.0, label_std=20.0)
    model = TabularHyperModel(spec, SMALL).build(keras_tuner.HyperParameters())
    head = model.get_layer("standardized")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    outputs = np.asarray(model.predict(_inputs(spec, 5), verbose=0))
    np.testing.assert_allclose(outputs, np.full((5, 1), 250.0), rtol=1e-6)
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.ones_like(bias)])  # one standardized unit = one label std
    outputs = np.asarray(model.predict(_inputs(spec, 5), verbose=0))
    np.testing.assert_allclose(outputs, np.full((5, 1), 270.0), rtol=1e-6)


def test_trained_regression_predicts_near_label_mean() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    rows = 256
    x = rng.normal(size=(rows, 1)).astype(np.float32)
    y = (1000.0 + 30.0 * x[:, 0] + rng.normal(0, 3.0, size=rows)).astype(np.float32)
    spec = PreprocessingSpec(
        "regression", "y", [NumericFeature("x", "x", float(x.mean()), float(x.var()))],
        label_mean=float(y.mean()), label_std=float(y.std()),
    )
    space = SearchSpace(
        hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
        dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
    )
    hypermodel = TabularHyperModel(spec, space)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, {"x": x}, y, epochs=5, verbose=0)
    predictions = np.asarray(model.predict({"x": x}, verbose=0))[:, 0]
    assert abs(predictions.mean() - y.mean()) < 0.25 * y.std()
    # it learned the slope too: far better than predicting the mean
    assert np.mean((predictions - y) ** 2) < 0.5 * np.var(y)


def test_fixed_ranges_become_fixed_hyperparameters() -> None:
    space = SearchSpace(
        hidden_layers=IntRange(min=2, max=2), units=IntRange(min=8, max=8), activation=["tanh"],
        dropout=FloatRange(min=0.0, max=0.0), l2=FloatRange(min=1e-4, max=1e-4, sampling="log"),
        l1=FloatRange.model_validate(2e-5), optimizer=["rmsprop"],
        learning_rate=FloatRange(min=1e-3, max=1e-3), batch_size=[8],
    )
    hp = keras_tuner.HyperParameters()
    model = TabularHyperModel(_classification(True, True), space).build(hp)
    kinds = {item["config"]["name"]: item["class_name"] for item in hp.get_config()["space"]}
    assert kinds == dict.fromkeys(
        ["hidden_layers", "units", "activation", "dropout", "l1", "l2", "optimizer", "learning_rate", "batch_size"],
        "Fixed",
    )
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    regularizer = model.get_layer("hidden_0").kernel_regularizer
    assert (regularizer.l1, regularizer.l2) == (pytest.approx(2e-5), pytest.approx(1e-4))
    assert hp.get("units") == 8
    hidden = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    assert [layer.units for layer in hidden] == [8, 8]
    assert not [layer for layer in model.layers if layer.name.startswith("dropout_")]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)


def test_ranges_become_tunable_hyperparameters() -> None:
    hp = keras_tuner.HyperParameters()
    TabularHyperModel(_classification(True, False), SearchSpace()).build(hp)
    kinds = {item["config"]["name"]: item["class_name"] for item in hp.get_config()["space"]}
    assert kinds["hidden_layers"] == "Int"
    assert kinds["learning_rate"] == "Float"
    assert kinds["activation"] == "Choice"
    assert kinds["batch_size"] == "Choice"


def test_hyperparameter_values_shape_the_model() -> None:
    hp = keras_tuner.HyperParameters()
    hypermodel = TabularHyperModel(_classification(True, True), SMALL)
    hypermodel.build(hp)
    hp.values.update({"hidden_layers": 2, "units": 8})
    model = hypermodel.build(hp)
    assert [layer.units for layer in model.layers if layer.name.startswith("hidden_")] == [8, 8]


@pytest.mark.parametrize("batch_size", [4, 16])
def test_fit_uses_batch_size_from_hyperparameters(batch_size: int) -> None:
    keras.utils.set_random_seed(0)
    spec = _classification(True, True)
    hypermodel = TabularHyperModel(spec, SMALL)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hp.values["batch_size"] = batch_size
    rows = 40
    labels = np.random.default_rng(0).integers(0, 3, size=rows).astype(np.int32)
    hypermodel.fit(hp, model, _inputs(spec, rows), labels, epochs=1, verbose=0)
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert steps == math.ceil(rows / batch_size)


@pytest.mark.parametrize(("rows", "batch_size", "epochs", "expected"), [
    (240, 32, 1, 1),  # penguins-sized, a 1-epoch Hyperband trial: 8 steps, tracing a loop would cost more
    (240, 32, 9, 1),  # 72 steps in all: still short
    (240, 32, 100, 8),  # final training's 100 epochs: a whole epoch (8 steps) per call
    (1000, 32, 5, 1),  # 160 steps in all
    (1000, 32, 9, 32),  # 288 steps: a whole epoch
    (20_000, 32, 1, 625),  # the throughput benchmark: one call per epoch
    (20_000, 16, 5, MAX_STEPS_PER_EXECUTION),  # 1,250 steps an epoch: capped
    (1_000_000, 256, 2, MAX_STEPS_PER_EXECUTION),
    (0, 32, 5, 1),
])
def test_steps_per_execution_rule(rows: int, batch_size: int, epochs: int, expected: int) -> None:
    assert steps_per_execution_for(rows, batch_size, epochs) == expected


def test_steps_per_execution_short_fit_boundary() -> None:
    batch = 32
    rows = SHORT_FIT_STEPS * batch  # exactly SHORT_FIT_STEPS steps in one epoch
    assert steps_per_execution_for(rows - batch, batch) == 1
    assert steps_per_execution_for(rows, batch) == SHORT_FIT_STEPS


class _StepsPerExecutionSeen(keras.callbacks.Callback):
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.seen = self.model.steps_per_execution


@pytest.mark.parametrize(("rows", "epochs"), [(40, 2), (600, 8)])
def test_fit_runs_the_chosen_steps_per_execution_then_restores_the_compiled_one(rows: int, epochs: int) -> None:
    keras.utils.set_random_seed(0)
    spec = _classification(True, False)
    hypermodel = TabularHyperModel(spec, SMALL)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hp.values["batch_size"] = 16
    labels = np.random.default_rng(0).integers(0, 3, size=rows).astype(np.int32)
    seen = _StepsPerExecutionSeen()
    fit_arguments: dict = {}
    keras_fit = model.fit

    def fit(*args, **kwargs):
        fit_arguments.update(kwargs)
        return keras_fit(*args, **kwargs)

    model.fit = fit
    history = hypermodel.fit(hp, model, _inputs(spec, rows), labels, epochs=epochs, verbose=0, callbacks=[seen],
                             validation_data=(_inputs(spec, 20, 1), labels[:20]))
    assert fit_arguments["validation_batch_size"] == LARGE_VALIDATION_BATCH  # forward passes only: cheap in bulk
    assert seen.seen == steps_per_execution_for(rows, 16, epochs)
    assert seen.seen == (1 if rows == 40 else math.ceil(rows / 16))
    # every batch trained once, whatever the steps per call; the validation loss is logged every epoch
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == epochs * math.ceil(rows / 16)
    assert len(history.history["val_loss"]) == epochs
    # afterwards the compiled value again, so predict() does not run a whole epoch's batches per call
    assert model.steps_per_execution == STEPS_PER_EXECUTION
    assert np.asarray(model.predict(_inputs(spec, 5), verbose=0)).shape == (5, 3)


def test_validation_batches_are_large_for_tables_and_the_training_batch_for_images() -> None:
    assert TabularHyperModel(_classification(True, False), SMALL).validation_batch_size(16) == LARGE_VALIDATION_BATCH
    assert TabularHyperModel(_classification(True, False), SMALL).validation_batch_size(4096) == 4096
    image = PreprocessingSpec("classification", "label", classes=["a", "b"],
                              image=ImageFeature("image", "image", 8, 8, 1))
    assert ImageHyperModel(image, SearchSpace()).validation_batch_size(16) is None


def test_resumed_hyperband_round_counts_only_its_own_epochs() -> None:
    """A promoted trial fits epochs initial_epoch..epochs: the rule sees only those."""
    spec = _classification(True, False)
    hypermodel = TabularHyperModel(spec, SMALL)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hp.values["batch_size"] = 16
    rows = 600  # 38 steps an epoch: 3 epochs are short (114 steps), 9 are not (342)
    labels = np.random.default_rng(0).integers(0, 3, size=rows).astype(np.int32)
    seen = _StepsPerExecutionSeen()
    hypermodel.fit(hp, model, _inputs(spec, rows), labels, epochs=9, initial_epoch=6, verbose=0, callbacks=[seen])
    assert seen.seen == 1


@pytest.mark.parametrize(("name", "kind"), [("adam", "Adam"), ("rmsprop", "RMSprop"), ("sgd", "SGD")])
def test_optimizer_choice_builds_that_optimizer(name: str, kind: str) -> None:
    space = SearchSpace(optimizer=[name], learning_rate=FloatRange.model_validate(0.01))
    model = TabularHyperModel(_classification(True, True), space).build(keras_tuner.HyperParameters())
    assert type(model.optimizer).__name__ == kind
    if name == "sgd":
        assert float(keras.ops.convert_to_numpy(model.optimizer.momentum)) == pytest.approx(0.9)


def test_output_layers_stay_float32_under_mixed_precision() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = TabularHyperModel(_classification(True, True), SearchSpace()).build(keras_tuner.HyperParameters())
        assert model.get_layer("hidden_0").compute_dtype == "float16"
        assert model.get_layer("probabilities").compute_dtype == "float32"
        assert model.outputs[0].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
