"""A strictly positive, right-skewed regression label is learned on the log scale, answered in its units."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.data.features import SpecFitter, label_values, model_inputs, targets
from tunepipe.data.target import MIN_ROWS, SKEWNESS, label_transform_for, skewness
from tunepipe.errors import DataError
from tunepipe.modelling.model import TabularHyperModel, in_label_units

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(0)
PRICES = RNG.lognormal(12, 0.6, 2_000)


def test_the_rule_takes_the_log_of_positive_long_tailed_labels_only() -> None:
    assert skewness(PRICES) > SKEWNESS and label_transform_for(PRICES) == ("log", pytest.approx(skewness(PRICES)))
    assert label_transform_for(RNG.normal(100, 10, 2_000))[0] == "none"  # symmetric
    assert label_transform_for(RNG.uniform(1, 2, 2_000))[0] == "none"  # positive but not skewed
    assert label_transform_for(np.append(PRICES, 0.0))[0] == "none"  # not strictly positive
    assert label_transform_for(PRICES[: MIN_ROWS - 1])[0] == "none"  # too few to tell
    assert label_transform_for(PRICES, "none")[0] == "none"
    assert label_transform_for(RNG.normal(9, 1, 99), "log")[0] == "log"  # forced
    with pytest.raises(DataError, match="strictly positive label; 'price' has values down to -1"):
        label_transform_for(np.array([-1.0, 2.0, 3.0]), "log", "price")


def _frame() -> pd.DataFrame:
    area = RNG.lognormal(4.5, 0.4, len(PRICES))
    return pd.DataFrame({"area": area, "price": PRICES})


def test_the_specification_holds_the_log_scale_and_the_targets_follow_it() -> None:
    frame = _frame()
    schema = {"task": "regression", "label": "price", "numeric": ["area"], "categorical": []}
    spec = SpecFitter(schema).update(frame).spec()
    assert spec.label_transform == "log" and spec.label_skewness == pytest.approx(skewness(PRICES))
    assert spec.label_mean == pytest.approx(np.log(PRICES).mean())
    assert spec.label_std == pytest.approx(np.log(PRICES).std())
    np.testing.assert_allclose(targets(frame, spec), np.log(PRICES).astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(label_values(frame, spec), PRICES)
    plain = SpecFitter(schema).update(frame).spec(label_transform="none")
    assert plain.label_transform == "none" and plain.label_mean == pytest.approx(PRICES.mean())


def test_the_exported_network_answers_in_the_label_units() -> None:
    frame = _frame()
    schema = {"task": "regression", "label": "price", "numeric": ["area"], "categorical": []}
    spec = SpecFitter(schema).update(frame).spec()
    space = SearchSpace(hidden_layers=IntRange(min=1, max=1), units=IntRange(min=4, max=4), activation=["relu"],
                        dropout=FloatRange(min=0.0, max=0.0), batch_size=[64])
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, space), keras_tuner.HyperParameters()
    network = hypermodel.build(hp)
    log_scale = np.asarray(network.predict(model_inputs(frame.head(50), spec), verbose=0)).reshape(-1)
    assert 10 < np.median(log_scale) < 14  # the log of the price, as it learns it
    exported = in_label_units(network, spec)
    answered = np.asarray(exported.predict(model_inputs(frame.head(50), spec), verbose=0)).reshape(-1)
    np.testing.assert_allclose(answered, np.exp(log_scale), rtol=1e-5)
    assert in_label_units(network, SpecFitter(schema).update(frame).spec(label_transform="none")) is network
