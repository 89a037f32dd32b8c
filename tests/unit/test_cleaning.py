"""Every cleaning option, globally and per column, with the counts the report shows (one batch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunepipe.config import CleaningConfig, ColumnRule
from tunepipe.data.ingest import IngestResult, clean
from tunepipe.data.report import balance_of_counts
from tunepipe.data.rules import duplicate_rows
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit


def clean_frame(frame: pd.DataFrame, label: str, config: CleaningConfig, task: str = "auto") -> IngestResult:
    return clean(frame, label, task, config)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "n": [1.0, np.nan, 3.0, 4.0, np.nan, 100.0],
        "c": ["u", None, "v", "v", "w", "v"],
        "y": ["a", "b", "a", "b", "a", "b"],
    })


@pytest.mark.parametrize(
    ("missing", "numeric_fill", "categorical_fill"),
    [("mean", 27.0, "v"), ("median", 3.5, "v"), ("mode", 1.0, "v"), ("constant", 0.0, "0.0")],
)
def test_global_missing_strategies(missing: str, numeric_fill: float, categorical_fill: str) -> None:
    cleaned = clean_frame(_frame(), "y", CleaningConfig(missing=missing))
    assert cleaned.frame["n"].tolist()[1] == numeric_fill
    assert cleaned.frame["c"].tolist()[1] == categorical_fill
    assert cleaned.report["columns"]["n"]["imputed"] == 2
    assert cleaned.report["columns"]["c"]["imputed"] == 1
    expected = "mode" if missing in ("mean", "median") else missing
    assert cleaned.report["columns"]["c"]["imputation"] == expected


def test_missing_drop_drops_rows_and_counts_them() -> None:
    cleaned = clean_frame(_frame(), "y", CleaningConfig(missing="drop"))
    assert len(cleaned.frame) == 4  # rows 1 (n and c missing) and 4 (n missing)
    assert cleaned.report["dropped_missing_rows"] == 2
    assert cleaned.report["columns"]["n"] == {"missing": 2, "missing_handling": "drop rows"}


def test_per_column_rule_wins_over_the_global_one() -> None:
    config = CleaningConfig(missing="median", columns={
        "n": ColumnRule(missing="constant", fill_value=-1), "c": ColumnRule(missing="constant", fill_value="none"),
    })
    cleaned = clean_frame(_frame(), "y", config)
    assert cleaned.frame["n"].tolist() == [1.0, -1.0, 3.0, 4.0, -1.0, 100.0]
    assert cleaned.frame["c"].tolist()[1] == "none"


def test_per_column_mean_on_text_is_refused_naming_the_column() -> None:
    with pytest.raises(DataError, match="column 'c': mean needs a numeric column"):
        clean_frame(_frame(), "y", CleaningConfig(columns={"c": ColumnRule(missing="mean")}))


def test_text_fill_value_for_a_numeric_column_is_refused() -> None:
    with pytest.raises(DataError, match="fill_value 'x' is text but column 'n' is numeric"):
        clean_frame(_frame(), "y", CleaningConfig(missing="constant", fill_value="x"))


def test_rules_for_unknown_columns_are_refused() -> None:
    with pytest.raises(DataError, match=r"not in the data: \['nope'\]"):
        clean_frame(_frame(), "y", CleaningConfig(columns={"nope": ColumnRule(drop=True)}))


def test_drop_rule_removes_a_column_but_never_the_label() -> None:
    cleaned = clean_frame(_frame(), "y", CleaningConfig(columns={"c": ColumnRule(drop=True)}))
    assert "c" not in cleaned.frame.columns and cleaned.report["columns"]["c"]["dropped"] == "by rule"
    with pytest.raises(DataError, match="drop the label column 'y'"):
        clean_frame(_frame(), "y", CleaningConfig(columns={"y": ColumnRule(drop=True)}))


def test_infinities_become_missing_or_drop_rows() -> None:
    frame = pd.DataFrame({"n": [1.0, np.inf, 3.0, -np.inf, 5.0], "y": ["a", "b", "a", "a", "b"]})
    as_missing = clean_frame(frame, "y", CleaningConfig())
    assert as_missing.report["columns"]["n"]["infinities"] == 2
    assert as_missing.frame["n"].tolist() == [1.0, 3.0, 3.0, 3.0, 5.0]  # median of 1, 3, 5
    dropped = clean_frame(frame, "y", CleaningConfig(infinities="drop"))
    assert dropped.report["dropped_infinite_rows"] == 2 and len(dropped.frame) == 3


def test_iqr_clipping_counts_and_bounds() -> None:
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 1000.0]
    frame = pd.DataFrame({"n": values, "y": ["a", "b"] * 4})
    cleaned = clean_frame(frame, "y", CleaningConfig(outliers="iqr"))
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert cleaned.report["columns"]["n"]["outliers_clipped"] == 1
    assert cleaned.frame["n"].max() == pytest.approx(q3 + 1.5 * (q3 - q1))
    assert cleaned.frame["n"].tolist()[:7] == values[:7]


def test_zscore_clipping_and_per_column_none() -> None:
    rng = np.random.default_rng(0)
    values = np.append(rng.normal(0, 1, 200), 50.0)
    frame = pd.DataFrame({"n": values, "m": values, "y": ["a", "b"] * 100 + ["a"]})
    config = CleaningConfig(outliers="zscore", zscore_threshold=3.0, columns={"m": ColumnRule(outliers="none")})
    cleaned = clean_frame(frame, "y", config)
    assert cleaned.report["columns"]["n"]["outliers_clipped"] >= 1
    assert cleaned.frame["n"].max() < 50.0
    assert cleaned.frame["m"].max() == 50.0 and "m" not in cleaned.report["columns"]


def test_no_outlier_clipping_by_default() -> None:
    frame = pd.DataFrame({"n": [1.0, 2.0, 3.0, 1e9], "y": ["a", "b", "a", "b"]})
    assert clean_frame(frame, "y", CleaningConfig()).frame["n"].max() == 1e9


def test_duplicates_kept_by_default_and_counted_or_dropped_by_setting() -> None:
    frame = pd.DataFrame({"n": [1.0, 1.0, 2.0, 3.0], "y": ["a", "a", "b", "b"]})
    kept = clean_frame(frame, "y", CleaningConfig())
    assert kept.report["duplicate_rows"] == 1 and kept.report["dropped_duplicates"] == 0 and len(kept.frame) == 4
    dropped = clean_frame(frame, "y", CleaningConfig(drop_duplicates=True))
    assert dropped.report["duplicate_rows"] == dropped.report["dropped_duplicates"] == 1 and len(dropped.frame) == 3


def test_many_duplicates_are_named_in_a_note_few_only_counted() -> None:
    """From MANY_DUPLICATES_SHARE of repeated rows the report says so; below it only the count."""
    from tunepipe.data.rules import MANY_DUPLICATES_SHARE

    few_columns = pd.DataFrame({"n": [1.0, 2.0] * 10, "y": ["a", "b"] * 10})  # 18 of 20 rows repeat one
    many = clean_frame(few_columns, "y", CleaningConfig())
    assert many.report["duplicate_rows"] == 18 and len(many.frame) == 20
    assert "18 of 20 rows (90%) repeat an earlier row exactly; kept as observations" in " ".join(many.report["notes"])
    rows = 200
    distinct = pd.DataFrame({"n": np.arange(rows) + 0.5, "y": ["a", "b"] * (rows // 2)})
    repeats = int(MANY_DUPLICATES_SHARE * rows) - 1
    few = clean_frame(pd.concat([distinct, distinct.iloc[:repeats]], ignore_index=True), "y", CleaningConfig())
    assert few.report["duplicate_rows"] == repeats and not any("repeat" in note for note in few.report["notes"])


def test_constant_columns_dropped_with_a_note_or_kept() -> None:
    frame = pd.DataFrame({"n": [1.0, 2.0, 3.0, 4.0], "k": ["same"] * 4, "y": ["a", "b", "a", "b"]})
    cleaned = clean_frame(frame, "y", CleaningConfig())
    assert "k" not in cleaned.frame.columns
    assert cleaned.report["columns"]["k"]["dropped"] == "constant ('same')"
    assert any("'k'" in note and "single value" in note for note in cleaned.report["notes"])
    assert "k" in clean_frame(frame, "y", CleaningConfig(drop_constant_columns=False)).frame.columns


def test_numeric_text_coercion_counts_bad_cells_and_can_be_turned_off() -> None:
    values = [str(v) for v in range(1, 20)] + ["n/a"]
    frame = pd.DataFrame({"t": values, "y": ["a", "b"] * 10})
    cleaned = clean_frame(frame, "y", CleaningConfig())
    column = cleaned.report["columns"]["t"]
    assert column["coerced_to_numeric"] is True and column["unparseable_cells"] == 1
    assert pd.api.types.is_numeric_dtype(cleaned.frame["t"])
    off = clean_frame(frame, "y", CleaningConfig(coerce_numeric_text=False))
    assert not pd.api.types.is_numeric_dtype(off.frame["t"])
    strict = clean_frame(frame, "y", CleaningConfig(numeric_text_share=1.0))
    assert not pd.api.types.is_numeric_dtype(strict.frame["t"])


def test_forced_types() -> None:
    frame = pd.DataFrame({"zip": [1001, 1002, 1001, 1003], "t": ["1", "x", "3", "4"], "y": ["a", "b", "a", "b"]})
    config = CleaningConfig(columns={"zip": ColumnRule(type="categorical"), "t": ColumnRule(type="numeric")})
    result = clean(frame, "y", cleaning=config)
    assert result.schema["categorical"] == ["zip"] and result.schema["numeric"] == ["t"]
    assert result.report["columns"]["t"]["unparseable_cells"] == 1


def test_label_is_never_clipped_or_imputed() -> None:
    frame = pd.DataFrame({"n": np.arange(10.0), "y": [1.0] * 9 + [1e6]})
    cleaned = clean_frame(frame, "y", CleaningConfig(outliers="iqr"), task="regression")
    assert cleaned.frame["y"].max() == 1e6


def test_class_imbalance_is_reported() -> None:
    frame = pd.DataFrame({"n": np.arange(20.0), "y": ["big"] * 16 + ["small"] * 4})
    result = clean(frame, "y")
    balance = result.report["label_balance"]
    assert balance["counts"] == {"big": 16, "small": 4} and balance["ratio"] == 4.0 and balance["imbalanced"]
    assert any("imbalanced" in note for note in result.report["notes"])
    assert not balance_of_counts(pd.Series(["a", "b", "a"]).value_counts().to_dict(), 3.0)["imbalanced"]


def test_report_has_before_and_after_statistics() -> None:
    result = clean(_frame(), "y")
    assert result.report["before"]["n"]["missing_fraction"] == pytest.approx(2 / 6)
    assert result.report["after"]["n"]["missing_fraction"] == 0.0
    assert result.report["before"]["c"]["type"] == "categorical"


def test_fast_duplicate_detection_matches_pandas() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.integers(0, 3, 500), "b": rng.choice(["x", "y", None], 500),
                          "c": rng.choice([0.5, np.nan], 500)})
    np.testing.assert_array_equal(duplicate_rows(frame), frame.duplicated().to_numpy())
    assert duplicate_rows(frame).sum() > 0


def test_one_batch_sketches_hold_every_value_so_quantiles_and_fills_are_exact() -> None:
    """Beyond the bounded quantile sample of many batches (20,000 values), one batch stays exact."""
    from tunepipe.data.sketches import QUANTILE_SAMPLE

    rng = np.random.default_rng(11)
    rows = QUANTILE_SAMPLE + 5_001
    values = rng.lognormal(0, 1, rows)
    values[rng.choice(rows, 500, replace=False)] = np.nan
    frame = pd.DataFrame({"n": values, "m": values[::-1].copy(), "k": np.arange(rows),  # k: no duplicate rows
                          "y": rng.choice(["a", "b"], rows)})
    result = clean(frame, "y", cleaning=CleaningConfig(outliers="iqr", columns={"m": ColumnRule(outliers="none")}))
    q1, q3 = np.nanquantile(values, [0.25, 0.75])
    assert result.report["columns"]["n"]["clip_range"] == [q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)]
    m = pd.Series(values[::-1])
    assert result.report["columns"]["m"]["fill_value"] == float(m.median())
    assert result.schema["features"]["m"]["mean"] == float(m.fillna(m.median()).mean())
