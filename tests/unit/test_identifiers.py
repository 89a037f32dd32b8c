"""The identifier rule: a column unique, or nearly, per row is left out of the model, and named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunepipe.config import CleaningConfig, ColumnRule, InputLimits
from tunepipe.data.features import SpecFitter
from tunepipe.data.identifiers import DENSE_SPAN, MIN_ROWS, UNIQUE_SHARE, identifier_reason
from tunepipe.data.ingest import clean, run_ingest

pytestmark = pytest.mark.unit

ROWS = 400


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = 1_000 + rng.choice(int(ROWS * 1.5), ROWS, replace=False)  # an auto-increment key with gaps
    return pd.DataFrame({
        "customer_id": ids,
        "name": [f"customer {value:05d}" for value in rng.permutation(ROWS)],
        "income": rng.integers(10_000, 200_000, ROWS),  # integers, nearly unique, from a wide range
        "weight": rng.normal(70, 10, ROWS),  # floats: unique per row, a measurement
        "age": rng.integers(18, 90, ROWS),
        "plan": rng.choice(["basic", "plus", "pro"], ROWS).astype(object),
        "y": rng.choice(["stay", "leave"], ROWS).astype(object),
    })


def test_keys_and_names_are_identifiers_measurements_and_categories_are_not() -> None:
    frame = _table()
    assert identifier_reason(frame["customer_id"]).startswith("integers")
    assert identifier_reason(frame["name"]) == f"text, {ROWS} distinct values in {ROWS} rows"
    assert frame["income"].nunique() >= UNIQUE_SHARE * ROWS  # as distinct as a key, but not dense
    for column in ("income", "weight", "age", "plan"):
        assert identifier_reason(frame[column]) is None, column


def test_the_thresholds_are_where_the_docstring_says() -> None:
    few = pd.Series([f"n{i}" for i in range(MIN_ROWS - 1)])
    assert identifier_reason(few) is None and identifier_reason(pd.Series([*few, "last"])) is not None
    repeats = round((1 - UNIQUE_SHARE) * 200)  # as many repeats as "nearly unique" allows
    nearly = pd.Series([f"n{i}" for i in range(200 - repeats)] + ["n0"] * repeats)
    over = pd.Series([f"n{i}" for i in range(199 - repeats)] + ["n0"] * (repeats + 1))
    assert identifier_reason(nearly) is not None and identifier_reason(over) is None
    dense = pd.Series(np.arange(100) * DENSE_SPAN)  # 1 + 99 * 2 = 199 <= 2 x 100
    assert identifier_reason(dense) is not None and identifier_reason(dense * 1.5) is None
    assert identifier_reason(pd.Series(np.arange(100) + 0.5)) is None  # not integers


def test_identifiers_are_left_out_named_and_recorded_for_serving() -> None:
    cleaned = clean(_table(), "y", "auto", CleaningConfig())
    assert "customer_id" not in cleaned.frame and "name" not in cleaned.frame
    assert cleaned.schema["ignored_columns"] == ["customer_id", "name"]
    assert set(cleaned.schema["numeric"]) == {"income", "weight", "age"} and cleaned.schema["categorical"] == ["plan"]
    assert cleaned.report["columns"]["customer_id"]["dropped"] == "identifier"
    notes = " ".join(cleaned.report["notes"])
    assert "column 'name' left out of the model: an identifier (text, 400 distinct values in 400 rows)" in notes
    spec = SpecFitter(cleaned.schema).update(cleaned.frame.fillna(0)).spec()
    assert spec.ignored_columns == ["customer_id", "name"]


def test_the_configuration_decides_over_the_rule() -> None:
    rules = {"customer_id": ColumnRule(identifier=False), "age": ColumnRule(identifier=True)}
    cleaned = clean(_table(), "y", "auto", CleaningConfig(columns=rules))
    assert "customer_id" in cleaned.schema["numeric"] and "age" not in cleaned.frame
    assert cleaned.schema["ignored_columns"] == ["name", "age"]
    assert cleaned.report["columns"]["age"]["identifier"] == "by rule"


def test_one_batch_and_many_agree(tmp_path) -> None:
    source = tmp_path / "source.csv"
    _table().to_csv(source, index=False)
    one = run_ingest(str(source), "y", "auto", tmp_path / "one", limits=InputLimits(streaming="never"))
    many = run_ingest(str(source), "y", "auto", tmp_path / "many", limits=InputLimits(streaming="always"))
    assert one.schema["ignored_columns"] == many.schema["ignored_columns"] == ["customer_id", "name"]
    assert one.report["columns"]["name"] == many.report["columns"]["name"]
