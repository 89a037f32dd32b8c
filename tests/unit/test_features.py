"""The preprocessing specification: names, statistics, vocabularies and model inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.data.features import (
    CategoricalFeature,
    NumericFeature,
    PreprocessingSpec,
    SpecFitter,
    input_name,
    model_inputs,
    raw_inputs,
    targets,
)
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

SCHEMA = {"label": "y", "task": "classification", "numeric": ["a", "b c"], "categorical": ["colour"]}


def _train() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(3.0, 2.0, size=40),
            "b c": rng.uniform(0, 100, size=40),
            # red and blue tie (17 each), green is rarer
            "colour": (["red", "blue", "green", "red", "blue", "red", "blue"] * 6)[:40],
            "y": rng.choice(["yes", "no"], size=40),
        }
    )


def _fit(train: pd.DataFrame, schema: dict, **options) -> PreprocessingSpec:
    """The specification of ``train`` as one batch."""
    return SpecFitter(schema).update(train).spec(**options)


def test_input_name_sanitizes_columns() -> None:
    taken: set[str] = set()
    assert input_name("bill length (mm)", taken) == "bill_length__mm"
    assert input_name("1st", taken) == "f_1st"
    assert input_name("plain", taken) == "plain"
    assert input_name("()", taken) == "feature"
    assert taken == {"bill_length__mm", "f_1st", "plain", "feature"}


def test_input_name_makes_duplicates_unique() -> None:
    taken: set[str] = set()
    names = [input_name(column, taken) for column in ["a b", "a-b", "a_b", "a b"]]
    assert names == ["a_b", "a_b_2", "a_b_3", "a_b_4"]
    assert len(set(names)) == 4


def test_spec_is_fitted_on_the_training_rows_only() -> None:
    train = _train()
    other = train.copy()
    other["a"] = other["a"] + 1000.0
    other["colour"] = "purple"
    spec = _fit(train, SCHEMA)
    assert spec == _fit(train.copy(), SCHEMA)  # deterministic
    a, b = spec.numeric
    assert (a.column, a.input_name) == ("a", "a")
    assert (b.column, b.input_name) == ("b c", "b_c")
    # one batch: numpy's numbers bit for bit (what the in-memory fit always gave)
    assert (a.mean, a.variance) == (float(np.mean(train["a"])), float(np.var(train["a"])))
    assert (b.mean, b.variance) == (float(np.mean(train["b c"])), float(np.var(train["b c"])))
    assert (a.minimum, a.maximum) == (float(train["a"].min()), float(train["a"].max()))
    assert spec.classes == ["no", "yes"]
    # fitted on other data, the statistics change: nothing leaks in from elsewhere
    assert _fit(other, SCHEMA).numeric[0].mean == pytest.approx(a.mean + 1000.0)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_many_batches_fit_what_one_batch_fits(task: str) -> None:
    """A streamed training split is the same fitter updated batch by batch: exact counts, moments
    equal but for float rounding."""
    train = _train()
    train["y"] = train["y"] if task == "classification" else np.arange(40.0) ** 1.5
    schema = {**SCHEMA, "task": task}
    whole = _fit(train, schema, normalization="minmax", max_one_hot=2)
    fitter = SpecFitter(schema)
    for batch in np.array_split(train, [1, 7, 8, 30]):  # uneven, one of a single row
        fitter.update(batch)
    batched = fitter.spec("minmax", 2)
    assert (batched.categorical, batched.classes) == (whole.categorical, whole.classes)
    assert [(f.minimum, f.maximum) for f in batched.numeric] == [(f.minimum, f.maximum) for f in whole.numeric]
    for got, want in zip(batched.numeric, whole.numeric, strict=True):
        assert got.mean == pytest.approx(want.mean, rel=1e-12)
        assert got.variance == pytest.approx(want.variance, rel=1e-12)
    assert (batched.label_mean, batched.label_std) == (
        pytest.approx(whole.label_mean, rel=1e-12), pytest.approx(whole.label_std, rel=1e-12))


def test_missing_and_infinite_values_are_left_out() -> None:
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0, np.inf], "c": ["a", None, "a", "b"], "y": ["p", "q", "p", "q"]})
    spec = _fit(train, {"label": "y", "task": "classification", "numeric": ["x"], "categorical": ["c"]})
    assert (spec.numeric[0].mean, spec.numeric[0].variance, spec.numeric[0].maximum) == (2.0, 1.0, 3.0)
    assert spec.categorical[0].vocabulary == ["a", "b"]


def test_vocabulary_ordered_by_frequency_then_value() -> None:
    train = pd.DataFrame({"c": ["z", "b", "z", "a", "b", "z", "q"], "y": ["p"] * 7})
    spec = _fit(train, {"label": "y", "task": "classification", "numeric": [], "categorical": ["c"]})
    assert spec.categorical[0].vocabulary == ["z", "b", "a", "q"]


def test_regression_spec_holds_label_statistics() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=30), "y": rng.normal(5.0, 3.0, size=30)})
    spec = _fit(train, {"label": "y", "task": "regression", "numeric": ["x"], "categorical": []})
    assert spec.classes == []
    assert spec.label_mean == float(np.mean(train["y"].to_numpy()))
    assert spec.label_std == float(np.std(train["y"].to_numpy()))


def test_constant_regression_label_gets_unit_std() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [4.0, 4.0, 4.0]})
    spec = _fit(train, {"label": "y", "task": "regression", "numeric": ["x"], "categorical": []})
    assert spec.label_std == 1.0
    assert spec.label_mean == 4.0


def test_model_inputs_indices_and_dtypes() -> None:
    spec = _fit(_train(), SCHEMA)
    vocabulary = spec.categorical[0].vocabulary
    assert vocabulary == ["blue", "red", "green"]
    colours = [vocabulary[0], vocabulary[2], "unseen", vocabulary[1]]
    frame = pd.DataFrame({"a": [1.5, 2.5, 3.5, 4.5], "b c": [0.0, 1.0, 2.0, 3.0], "colour": colours})
    inputs = model_inputs(frame, spec)
    assert set(inputs) == {"a", "b_c", "colour"}
    assert inputs["a"].dtype == np.float32
    assert inputs["a"].shape == (4, 1)
    np.testing.assert_array_equal(inputs["a"][:, 0], np.array([1.5, 2.5, 3.5, 4.5], dtype=np.float32))
    assert inputs["colour"].dtype == np.int32
    assert inputs["colour"].shape == (4, 1)
    assert inputs["colour"][:, 0].tolist() == [1, 3, 0, 2]


def test_raw_inputs_keep_strings() -> None:
    spec = _fit(_train(), SCHEMA)
    frame = pd.DataFrame({"a": [1.0], "b c": [2.0], "colour": ["red"]})
    inputs = raw_inputs(frame, spec)
    assert inputs["colour"].shape == (1, 1)
    assert inputs["colour"][0, 0] == "red"
    assert inputs["b_c"].dtype == np.float32


def test_missing_column_names_it() -> None:
    spec = _fit(_train(), SCHEMA)
    with pytest.raises(DataError, match="'b c'"):
        model_inputs(pd.DataFrame({"a": [1.0], "colour": ["red"]}), spec)


def test_targets_class_ids_and_unseen_class() -> None:
    spec = _fit(_train(), SCHEMA)
    ids = targets(pd.DataFrame({"y": ["yes", "no", "no"]}), spec)
    assert ids.dtype == np.int32
    assert ids.tolist() == [1, 0, 0]
    with pytest.raises(DataError, match="maybe"):
        targets(pd.DataFrame({"y": ["yes", "maybe"]}), spec)


def test_regression_targets_are_float32() -> None:
    spec = PreprocessingSpec("regression", "y", [NumericFeature("x", "x", 0.0, 1.0)])
    values = targets(pd.DataFrame({"y": [1, 2, 3]}), spec)
    assert values.dtype == np.float32
    assert values.tolist() == [1.0, 2.0, 3.0]


def test_spec_json_round_trip(tmp_path) -> None:
    spec = _fit(_train(), SCHEMA)
    assert PreprocessingSpec.from_json(spec.to_json()) == spec
    path = tmp_path / artifacts.PREPROCESSING_SPEC_FILE
    spec.save(path)
    loaded = PreprocessingSpec.load(path)
    assert loaded == spec
    assert isinstance(loaded.numeric[0], NumericFeature)
    assert isinstance(loaded.categorical[0], CategoricalFeature)
    assert loaded.is_classification
