"""Dates and times: parsed, held as days since the epoch, calendar features inside the model."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from tunepipe.config import CleaningConfig, ColumnRule, InputLimits
from tunepipe.data.dates import CALENDAR, calendar_features, to_days
from tunepipe.data.ingest import clean, run_ingest
from tunepipe.data.schema import compare_schemas
from tunepipe.modelling.model import calendar
from tunepipe.publishing.serving import DEFAULT_SIGNATURE
from tunepipe.serving import contract as c
from tunepipe.serving.requests import decode_request
from tunepipe.serving.settings import Limits

pytestmark = pytest.mark.unit

FRIDAY = 19_783.0  # 2024-03-01


def test_dates_and_timestamps_in_iso_forms_parse_and_the_rest_is_missing() -> None:
    text = pd.Series(["2024-03-01", "2024/03/01", "2024-03-01 12:00", "2024-03-01T12:00:00Z",
                      "2024-03-01T14:00:00+02:00", "yesterday", None, "2024-13-45"], dtype=object)
    days = to_days(text)
    np.testing.assert_allclose(days.iloc[:5], [FRIDAY, FRIDAY, FRIDAY + 0.5, FRIDAY + 0.5, FRIDAY + 0.5])
    assert days.iloc[5:].isna().all()
    stamps = pd.Series(pd.to_datetime(["2024-03-01 06:00"]))
    assert to_days(stamps).iloc[0] == FRIDAY + 0.25
    assert to_days(pd.Series([FRIDAY * 86_400.0]), epoch_numbers=True).iloc[0] == FRIDAY


def test_calendar_features_are_cyclic_and_the_model_computes_the_same() -> None:
    features = calendar_features(np.array([FRIDAY, FRIDAY + 0.75, FRIDAY + 3.0]))
    assert list(features) == list(CALENDAR)
    friday, monday = 2 * np.pi * 4 / 7, 2 * np.pi * 0 / 7
    np.testing.assert_allclose(features["weekday_sin"], [np.sin(friday), np.sin(friday), np.sin(monday)], atol=1e-9)
    np.testing.assert_allclose(features["hour_cos"], [1.0, 0.0, 1.0], atol=1e-9)  # midnight, 18:00, midnight
    days = np.random.default_rng(0).uniform(18_000, 21_000, 500).astype(np.float32)
    computed = keras.ops.convert_to_numpy(calendar(keras.ops.convert_to_tensor(days.reshape(-1, 1))))
    expected = np.stack(list(calendar_features(days.astype(np.float64)).values()), axis=1)
    np.testing.assert_allclose(computed, expected, atol=2e-3)  # float32 days: a few minutes' resolution


def _sales(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    stamps = pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(rows), unit="D")  # one row a day: unique
    text = pd.Series(stamps.strftime("%Y-%m-%d"), dtype=object)
    text.iloc[[5, 17]] = ["not a date", "31/02/2022"]
    return pd.DataFrame({"day": text, "x": rng.normal(size=rows), "amount": rng.normal(50, 5, rows)})


def test_a_date_column_is_parsed_counted_filled_and_never_an_identifier() -> None:
    cleaned = clean(_sales(), "amount", "auto", CleaningConfig())
    assert cleaned.schema["dates"] == ["day"] and "day" in cleaned.schema["numeric"]
    assert "ignored_columns" not in cleaned.schema  # a unique daily date is the series' clock, not a name
    actions = cleaned.report["columns"]["day"]
    assert actions["parsed_as_date"] is True and actions["unparseable_cells"] == 2 and actions["imputed"] == 2
    assert "column 'day': 2 cells are not dates" in " ".join(cleaned.report["notes"])
    assert cleaned.frame["day"].iloc[0] == (pd.Timestamp("2022-01-01") - pd.Timestamp("1970-01-01")).days
    as_text = clean(_sales(), "amount", "auto", CleaningConfig(columns={"day": ColumnRule(type="categorical")}))
    assert "dates" not in as_text.schema


def test_drift_on_a_date_compares_its_range_as_dates() -> None:
    baseline = clean(_sales(), "amount", "auto", CleaningConfig()).schema
    later = _sales()
    later["day"] = (pd.Timestamp("2023-06-01") + pd.to_timedelta(np.arange(len(later)), unit="D")).strftime("%Y-%m-%d")
    findings = compare_schemas(baseline, clean(later, "amount", "auto", CleaningConfig()).schema)
    kinds = {(item["column"], item["kind"]) for item in findings}
    assert ("day", "range_shift") in kinds and ("day", "mean_shift") not in kinds
    message = next(item["message"] for item in findings if item["kind"] == "range_shift")
    assert "[2023-06-01, 2024-07-04] leaves the baseline's [2022-01-01, 2023-02-04]" in message


def test_one_batch_and_many_agree(tmp_path) -> None:
    source = tmp_path / "sales.csv"
    _sales().to_csv(source, index=False)
    one = run_ingest(str(source), "amount", "auto", tmp_path / "one", limits=InputLimits(streaming="never"))
    many = run_ingest(str(source), "amount", "auto", tmp_path / "many", limits=InputLimits(streaming="always"))
    assert one.schema["dates"] == many.schema["dates"] == ["day"]
    assert one.report["columns"]["day"] == many.report["columns"]["day"]


def test_tunepipe_serve_takes_a_date_as_text_or_as_days() -> None:
    contract = c.contract_of({DEFAULT_SIGNATURE: {"day": c.TensorInfo("float32", (None,))}},
                             {"inputs": {"day": {"column": "day", "date": True}}})
    feeds = decode_request({"instances": [{"day": "2024-03-01 12:00"}, {"day": FRIDAY}, {"day": None}]}, contract,
                           Limits())
    np.testing.assert_allclose(feeds.inputs["day"][:2], [FRIDAY + 0.5, FRIDAY])
    assert np.isnan(feeds.inputs["day"][2])
    from tunepipe.errors import BadRequest

    with pytest.raises(BadRequest, match="expected a date"):
        decode_request({"instances": [{"day": "soon"}]}, contract, Limits())
