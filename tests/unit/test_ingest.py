"""Reading, cleaning and describing source data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunepipe
from tunepipe import artifacts
from tunepipe.config import CleaningConfig
from tunepipe.data.ingest import clean, fingerprint, infer_task, read_table, run_ingest
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=12).round(3),
            "colour": rng.choice(["red", "blue"], size=12),
            "y": rng.choice(["a", "b"], size=12),
        }
    )


def test_read_csv(tmp_path) -> None:
    frame = _frame()
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    read = read_table(str(path))
    assert list(read.columns) == ["x", "colour", "y"]
    assert len(read) == 12
    np.testing.assert_allclose(read["x"].to_numpy(), frame["x"].to_numpy())


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_read_parquet(tmp_path, suffix: str) -> None:
    frame = _frame()
    path = tmp_path / f"data{suffix}"
    frame.to_parquet(path, index=False)
    read = read_table(str(path))
    assert read["y"].tolist() == frame["y"].tolist()
    np.testing.assert_allclose(read["x"].to_numpy(), frame["x"].to_numpy())


def test_read_penguins() -> None:
    frame = read_table(str(PENGUINS))
    assert frame.shape == (344, 8)
    assert "species" in frame.columns


def test_unsupported_extension_names_the_file(tmp_path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=re.escape(str(path))) as caught:
        read_table(str(path))
    assert ".xlsx" in str(caught.value)


def test_missing_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_table(str(path))


@pytest.mark.parametrize("uri", ["http://example.com/data.csv", "ftp://host/data.csv", "s3a://bucket/data.csv"])
def test_unsupported_scheme_is_refused_with_its_name(uri: str) -> None:
    with pytest.raises(DataError, match=re.escape(uri) + ".*unsupported scheme"):
        read_table(uri)


def test_header_only_csv_names_the_file(tmp_path) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text("a,b,label\n")
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_table(str(path))


def test_unreadable_parquet_names_the_file(tmp_path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_table(str(path))


def test_clean_drops_rows_without_label_and_duplicates_only_when_asked() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "y": ["a", "b", "b", None, "a", None, "b"],
        }
    )
    result = clean(frame, "y", "classification")
    assert result.report["rows_in"] == 7
    assert result.report["dropped_without_label"] == 2
    assert result.report["duplicate_rows"] == 1 and result.report["dropped_duplicates"] == 0
    assert result.report["rows_out"] == len(result.frame) == result.schema["rows"] == 5
    assert sorted(result.frame["x"].tolist()) == [1.0, 2.0, 2.0, 4.0, 6.0]
    dropped = clean(frame, "y", "classification", CleaningConfig(drop_duplicates=True))
    assert dropped.report["dropped_duplicates"] == 1
    assert sorted(dropped.frame["x"].tolist()) == [1.0, 2.0, 4.0, 6.0] and dropped.schema["rows"] == 4


def test_clean_imputes_median_and_most_frequent() -> None:
    frame = pd.DataFrame(
        {
            "n": [1.0, np.nan, 3.0, 10.0, np.nan, 2.0],
            "c": ["u", "v", None, "v", "w", None],
            "y": ["a", "b", "a", "b", "a", "b"],
        }
    )
    result = clean(frame, "y")
    columns = result.report["columns"]
    assert columns["n"] == {"imputed": 2, "imputation": "median", "fill_value": 2.5}
    assert columns["c"] == {"imputed": 2, "imputation": "mode", "fill_value": "v"}
    assert "y" not in columns
    assert result.frame["n"].tolist() == [1.0, 2.5, 3.0, 10.0, 2.5, 2.0]
    assert result.frame["c"].tolist() == ["u", "v", "v", "v", "w", "v"]
    assert not result.frame.isna().any().any()
    assert result.schema["numeric"] == ["n"]
    assert result.schema["categorical"] == ["c"]


def test_clean_coerces_numeric_looking_text_and_counts_bad_cells() -> None:
    values = [str(v) for v in range(1, 20)] + ["n/a"]  # 19 of 20 parse: 95% >= 90%
    frame = pd.DataFrame({"t": values, "y": ["a", "b"] * 10})
    result = clean(frame, "y")
    column = result.report["columns"]["t"]
    assert column["coerced_to_numeric"] is True
    assert column["unparseable_cells"] == 1
    assert column["imputed"] == 1
    assert column["imputation"] == "median"
    assert column["fill_value"] == 10.0
    assert pd.api.types.is_numeric_dtype(result.frame["t"])
    assert result.schema["numeric"] == ["t"]
    assert result.frame["t"].iloc[-1] == 10.0


def test_clean_keeps_mostly_text_column_categorical() -> None:
    frame = pd.DataFrame({"t": ["1", "2", "x", "y", "z", "w"], "y": ["a", "b"] * 3})
    result = clean(frame, "y")
    assert result.schema["categorical"] == ["t"]
    assert "t" not in result.report["columns"]


def test_missing_label_column_names_it() -> None:
    with pytest.raises(DataError, match="'target'"):
        clean(_frame(), "target")


def test_all_missing_feature_column_is_dropped_with_a_note() -> None:
    frame = _frame()
    frame["empty_col"] = np.nan
    result = clean(frame, "y")
    assert "empty_col" not in result.frame.columns
    assert result.report["columns"]["empty_col"] == {"dropped": "all values missing"}
    assert any("'empty_col'" in note for note in result.report["notes"])


def test_label_without_any_value_is_rejected() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [None, None]})
    with pytest.raises(DataError, match="'y'"):
        clean(frame, "y")


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (pd.Series(["cat", "dog", "cat"]), "classification"),
        (pd.Series([True, False, True]), "classification"),
        (pd.Series([0, 1, 2, 1, 0] * 4), "classification"),
        (pd.Series([1.0, 2.0, np.nan, 1.0]), "classification"),  # integral floats (NaN made them float)
        (pd.Series([0.5, 1.25, 3.75]), "regression"),
        (pd.Series(np.arange(50)), "regression"),  # more distinct integers than classes make sense
    ],
)
def test_infer_task(labels: pd.Series, task: str) -> None:
    assert infer_task(labels) == task


def test_auto_task_and_label_as_text_for_classification() -> None:
    frame = pd.DataFrame({"x": np.arange(8, dtype=float), "y": [0, 1] * 4})
    result = clean(frame, "y")
    assert result.schema["task"] == "classification"
    assert set(result.frame["y"]) == {"0", "1"}


def test_auto_task_regression_keeps_numeric_label() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=30), "y": rng.normal(size=30)})
    result = clean(frame, "y")
    assert result.schema["task"] == "regression"
    assert pd.api.types.is_numeric_dtype(result.frame["y"])


def test_regression_on_text_label_names_the_column() -> None:
    with pytest.raises(DataError, match="'y'"):
        clean(_frame(), "y", "regression")


def test_penguins_clean_report() -> None:
    result = clean(read_table(str(PENGUINS)), "species")
    assert result.schema["task"] == "classification"
    assert result.schema["categorical"] == ["island", "sex"]
    assert result.schema["numeric"] == [
        "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year",
    ]
    assert result.report["columns"]["sex"]["imputed"] == 11
    assert result.report["columns"]["sex"]["imputation"] == "mode"
    assert result.report["columns"]["bill_length_mm"]["imputed"] == 2
    assert result.report["rows_out"] == 344
    assert not result.frame.isna().any().any()
    assert result.schema["features"]["island"] == {
        "type": "categorical", "categories": 3, "values": ["Biscoe", "Dream", "Torgersen"], "missing_fraction": 0.0,
    }
    assert result.schema["features"]["sex"]["missing_fraction"] == pytest.approx(11 / 344)


def test_fingerprint_is_stable_and_follows_content(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,a\n")
    first = fingerprint(str(path))
    assert first.startswith("sha256:")
    assert fingerprint(str(path)) == first
    copy = tmp_path / "copy.csv"
    copy.write_text("x,y\n1,a\n")
    assert fingerprint(str(copy)) == first  # content, not name, decides
    path.write_text("x,y\n2,a\n")
    assert fingerprint(str(path)) != first


def test_run_ingest_writes_data_schema_and_reports(tmp_path) -> None:
    out = tmp_path / "cleaned"
    result = run_ingest(str(PENGUINS), "species", "auto", out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [artifacts.CLEANED_DATA_FILE, artifacts.SCHEMA_FILE, artifacts.DATA_REPORT_FILE,
         artifacts.DATA_REPORT_HTML_FILE]
    )
    page = (out / artifacts.DATA_REPORT_HTML_FILE).read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page and "bill_length_mm" in page
    cleaned = pd.read_parquet(out / artifacts.CLEANED_DATA_FILE)
    assert len(cleaned) == result.report["rows_out"] == 344
    schema = json.loads((out / artifacts.SCHEMA_FILE).read_text())
    assert schema["label"] == "species"
    assert schema["fingerprint"] == fingerprint(str(PENGUINS))
    report = json.loads((out / artifacts.DATA_REPORT_FILE).read_text())
    assert report["source"] == str(PENGUINS)
    assert report["rows_in"] == 344
