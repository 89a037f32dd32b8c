"""Dates and times: recognised, held as days since 1970-01-01 (UTC), and turned into calendar features.

**Recognised** (by the type rule, :mod:`tunepipe.data.types`): a column the source types as a
timestamp; a text column of which at least ``cleaning.numeric_text_share`` (0.9) of the present
cells read as ISO 8601 dates or timestamps (``2024-03-01``, ``2024-03-01 14:30``,
``2024-03-01T14:30:00Z``, ``2024/03/01``: :data:`DATE_PATTERN`); or a column whose rule says
``type: date`` (numbers are then epoch seconds). A cell that does not parse is missing, counted
and filled as any numeric cell (the median by default).

**Held** as a number, the days since the epoch (float64 in the cleaned data; UTC, a timestamp with
an offset converted to it), so the missing-value rule, the schema's range and drift treat it as the
numeric column it is; drift on a date compares its range only (new data is expected to be later).

**Calendar features** (:func:`calendar_features`, and the same formulas inside the model,
:mod:`tunepipe.modelling.model`): beside the date itself (normalised: the trend, which carries the
year), the position in the day (hour), in the week (day of week) and in the year (month and season)
as sine and cosine pairs, so that 23:00 sits next to 00:00 and December next to January. The
served model takes the days number; ``tunepipe serve`` also takes the date as text, as the client
sends it, and converts it with :func:`to_days` (a model server calling the SavedModel directly
sends the days number).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

# Dates and timestamps read as such: ISO 8601 (date, optional time with a space or T, optional
# seconds, fraction and zone) and the same with slashes in the date.
DATE_PATTERN = (r"^\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2})?$")
DATE_RE = re.compile(DATE_PATTERN)
SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.2425  # the Gregorian year's mean length
# 1970-01-01 was a Thursday: day 0 is weekday 3 when Monday is 0.
EPOCH_WEEKDAY = 3
# The six calendar features of a date column, in the model's order.
CALENDAR = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "year_sin", "year_cos")


def date_share(present: pd.Series) -> float:
    """The share of ``present`` (text cells) written as a date or timestamp (:data:`DATE_PATTERN`)."""
    if not len(present):
        return 0.0
    return float(present.astype(str).str.strip().str.match(DATE_PATTERN).mean())


def to_days(values: pd.Series, epoch_numbers: bool = False) -> pd.Series:
    """Days since 1970-01-01 UTC (float64) of timestamps, date text or epoch seconds; NaN where a
    present cell does not parse (or is missing).

    Args:
        values: A timestamp column, text, or numbers.
        epoch_numbers: Whether numbers are epoch seconds (a column declared ``type: date``).
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(np.float64)
        return numbers / SECONDS_PER_DAY if epoch_numbers else numbers
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
    else:
        text = values.astype(object).map(lambda cell: cell.strip().replace("/", "-", 2) if isinstance(cell, str)
                                         else None)
        dated = text.map(lambda cell: cell is not None and DATE_RE.match(cell) is not None).astype(bool)
        stamps = pd.to_datetime(text.where(dated, None), errors="coerce", utc=True, format="ISO8601")
    seconds = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return pd.Series(seconds.to_numpy(dtype=np.float64, na_value=np.nan) / SECONDS_PER_DAY, index=values.index)


def calendar_features(days: np.ndarray) -> dict[str, np.ndarray]:
    """The cyclic calendar features of days since the epoch (:data:`CALENDAR`), as the model computes them."""
    days = np.asarray(days, dtype=np.float64)
    hour = 2 * math.pi * (days - np.floor(days))
    weekday = 2 * math.pi * np.mod(np.floor(days) + EPOCH_WEEKDAY, 7.0) / 7.0
    year = 2 * math.pi * np.mod(days, DAYS_PER_YEAR) / DAYS_PER_YEAR
    return dict(zip(CALENDAR, (np.sin(hour), np.cos(hour), np.sin(weekday), np.cos(weekday), np.sin(year),
                               np.cos(year)), strict=True))


def day_text(days: float) -> str:
    """A days number as the date (and time, when it has one) it stands for, for messages."""
    stamp = pd.Timestamp("1970-01-01") + pd.to_timedelta(days, unit="D")
    return stamp.strftime("%Y-%m-%d" if days == math.floor(days) else "%Y-%m-%d %H:%M")
