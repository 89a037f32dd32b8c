"""The streaming path's first pass: profile every column over all batches, then decide the cleaning.

The in-memory path (:mod:`tunepipe.data.cleaning`) decides and acts on the whole frame at once.
Here the decisions come first, from sketches (:mod:`tunepipe.data.sketches`), and
:meth:`CleaningPlan.apply` then acts batch by batch. The rules are the same; where a decision
differs, it is said here and in docs/data.md:

- A text column's type is decided on the **first batch** (:data:`~tunepipe.data.batches.BATCH_ROWS`
  rows; the in-memory path sniffs its first 2,000 cells, then parses all): numeric-looking, it is
  parsed in every batch and cells that do not parse become missing (counted); otherwise it stays text.
- Empty and constant columns, outlier bounds and the task are judged over every labelled row of the
  raw data, before duplicates are dropped (the in-memory path: after). IQR bounds use approximate
  quartiles (rank error within :func:`~tunepipe.data.sketches.rank_error`); z-score bounds are exact.
- Rows are dropped for missing cells (``missing: drop``) and outliers counted as each batch is
  cleaned, before duplicates are dropped (the in-memory path: duplicates first). The rows kept are
  the same; the counts split differently between ``dropped_duplicates`` and ``dropped_missing_rows``,
  and mean fills are averaged over the kept rows only.
- Numbers are read as float64, so a constant integer column is reported as ``constant (3.0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tunepipe.config import CleaningConfig
from tunepipe.data.cleaning import holds_booleans, is_numeric
from tunepipe.data.schema import MAX_INTEGER_CLASSES
from tunepipe.data.sketches import CategorySketch, NumericSketch
from tunepipe.errors import DataError

# The key of row-level counts in :meth:`CleaningPlan.apply`'s ``counts`` (no column has an empty name).
ROWS = ""


@dataclass
class Profile:
    """Sketches of the raw, type-decided columns over every labelled row (pass 1)."""

    numeric: dict[str, NumericSketch] = field(default_factory=dict)
    text: dict[str, CategorySketch] = field(default_factory=dict)
    raw_missing: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0
    without_label: int = 0
    bytes_per_row: float = 0.0


@dataclass
class CleaningPlan:
    """Every decision of cleaning, made before any row is written."""

    label: str
    task: str
    numeric: list[str]
    categorical: list[str]
    parsed_text: list[str]  # text columns parsed as numbers
    dropped: dict[str, str]  # column -> why
    clip: dict[str, tuple[float, float]]
    drop_missing: list[str]  # columns whose missing cells drop the row (missing: drop)
    infinities: str
    integral_label: bool = False

    def apply(self, batch: pd.DataFrame, counts: dict[str, dict[str, int]]) -> pd.DataFrame:
        """One raw batch cleaned by the plan; what was done is added to ``counts`` (column -> action -> n).

        Missing feature cells stay missing: their fill values are known only once every row is
        cleaned, and preprocess fills them (:mod:`tunepipe.data.preprocess`).
        """
        frame = pd.DataFrame(index=batch.index)
        for column in self.numeric:
            values = batch[column]
            if column in self.parsed_text:
                parsed = pd.to_numeric(values, errors="coerce")
                _count(counts, column, "unparseable_cells", int((parsed.isna() & values.notna()).sum()))
                values = parsed
            frame[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        for column in self.categorical:
            values = batch[column]
            frame[column] = values.map(lambda value: None if pd.isna(value) else str(value)).astype(object)
        frame[self.label] = self._label(batch[self.label])
        labelled = frame[self.label].notna().to_numpy()
        infinite_rows = np.zeros(len(frame), dtype=bool)
        for column in self.numeric:
            infinite = np.isinf(frame[column].to_numpy())
            _count(counts, column, "infinities", int(infinite.sum()))  # every row, as the in-memory path
            if self.infinities == "drop":
                infinite_rows |= infinite
            else:
                frame.loc[infinite, column] = np.nan
        missing_rows = np.zeros(len(frame), dtype=bool)
        for column in self.drop_missing:
            missing = frame[column].isna().to_numpy() & labelled & ~infinite_rows
            _count(counts, column, "missing", int(missing.sum()))
            missing_rows |= missing
        _count(counts, ROWS, "dropped_infinite_rows", int((infinite_rows & labelled).sum()))
        _count(counts, ROWS, "dropped_missing_rows", int(missing_rows.sum()))
        frame = frame[labelled & ~infinite_rows & ~missing_rows]
        for column, (low, high) in self.clip.items():
            numbers = frame[column].to_numpy()
            _count(counts, column, "outliers_clipped", int(((numbers < low) | (numbers > high)).sum()))
            frame[column] = np.clip(numbers, low, high)
        return frame

    def _label(self, labels: pd.Series) -> pd.Series:
        if self.task == "regression":
            return pd.to_numeric(labels, errors="coerce").astype(np.float64)
        if self.integral_label:
            numbers = pd.to_numeric(labels, errors="coerce")
            return numbers.map(lambda value: None if pd.isna(value) else str(int(value))).astype(object)
        return labels.map(lambda value: None if pd.isna(value) else str(value)).astype(object)


def _count(counts: dict[str, dict[str, int]], column: str, action: str, number: int) -> None:
    if number:
        counts.setdefault(column, {})[action] = counts.setdefault(column, {}).get(action, 0) + number


def decide_types(first: pd.DataFrame, label: str, config: CleaningConfig) -> tuple[list[str], list[str], list[str]]:
    """Numeric, categorical and numeric-parsed-from-text feature columns, from the first batch."""
    numeric, categorical, parsed = [], [], []
    for column in first.columns:
        rule = config.rule(column)
        if column == label or rule.drop:
            continue
        series = first[column]
        present = series.dropna()
        if rule.type == "categorical" or pd.api.types.is_bool_dtype(series):
            categorical.append(column)
        elif is_numeric(series):
            numeric.append(column)
        elif rule.type == "numeric" or (
            config.coerce_numeric_text and len(present) and not holds_booleans(present)
            and pd.to_numeric(present, errors="coerce").notna().mean() >= config.numeric_text_share
        ):
            numeric.append(column)
            parsed.append(column)
        else:
            categorical.append(column)
    return numeric, categorical, parsed


def _label_is_numeric(first: pd.Series) -> bool:
    present = first.dropna()
    if is_numeric(present):
        return True
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().all())


def profile_batches(
    batches: Any, label: str, config: CleaningConfig, seed: int
) -> tuple[Profile, list[str], list[str], list[str], bool]:
    """Pass 1: sketches of every feature and the label over the labelled rows of every batch.

    Returns:
        The profile, the numeric, categorical and parsed-text columns, and whether the label is numeric.
    """
    rng = np.random.default_rng(seed)
    profile = Profile()
    numeric: list[str] = []
    categorical: list[str] = []
    parsed: list[str] = []
    numeric_label = False
    for index, batch in enumerate(batches):
        if index == 0:
            if label not in batch.columns:
                raise DataError(f"label column {label!r} not found; columns are {list(batch.columns)}")
            unknown = sorted(set(config.columns) - set(batch.columns))
            if unknown:
                raise DataError(f"cleaning rules name columns that are not in the data: {unknown}")
            if config.rule(label).drop:
                raise DataError(f"cleaning rules drop the label column {label!r}")
            numeric, categorical, parsed = decide_types(batch, label, config)
            numeric_label = _label_is_numeric(batch[label])
            profile.bytes_per_row = float(batch.memory_usage(deep=True).sum()) / max(len(batch), 1)
        _profile_batch(profile, batch, label, numeric, categorical, parsed, numeric_label, rng)
    return profile, numeric, categorical, parsed, numeric_label


def _profile_batch(profile: Profile, batch: pd.DataFrame, label: str, numeric: list[str], categorical: list[str],
                   parsed: list[str], numeric_label: bool, rng: np.random.Generator) -> None:
    profile.rows_in += len(batch)
    for column in batch.columns:
        profile.raw_missing[column] = profile.raw_missing.get(column, 0) + int(batch[column].isna().sum())
    labels = pd.to_numeric(batch[label], errors="coerce") if numeric_label else batch[label]
    labelled = batch[labels.notna().to_numpy()]
    profile.without_label += len(batch) - len(labelled)
    for column in numeric:
        values = pd.to_numeric(labelled[column], errors="coerce") if column in parsed else labelled[column]
        profile.numeric.setdefault(column, NumericSketch()).update(
            values.to_numpy(dtype=np.float64, na_value=np.nan), rng)
    for column in categorical:
        profile.text.setdefault(column, CategorySketch()).update(labelled[column])
    target = labels[labels.notna()]
    if numeric_label:
        profile.numeric.setdefault(label, NumericSketch()).update(target.to_numpy(dtype=np.float64), rng)
    profile.text.setdefault(label, CategorySketch(cap=MAX_INTEGER_CLASSES * 50)).update(target)


def _task(profile: Profile, label: str, task: str, numeric_label: bool) -> tuple[str, bool]:
    classes = profile.text[label]
    if not classes.counts:
        raise DataError(f"label column {label!r} has no values")
    integral = numeric_label and bool(np.all(np.mod(profile.numeric[label].values, 1) == 0))
    if task == "auto":
        few = not classes.approximate and len(classes.counts) <= MAX_INTEGER_CLASSES
        task = "classification" if not numeric_label or (integral and few) else "regression"
    if task == "regression" and not numeric_label:
        raise DataError(f"label column {label!r} is not numeric, so it cannot be regressed")
    if task == "classification" and len(classes.counts) < 2:
        only = next(iter(classes.counts))
        raise DataError(f"label column {label!r} has a single class {only!r}; classification needs two")
    return task, integral


def _useless(profile: Profile, columns: list[str], config: CleaningConfig) -> dict[str, str]:
    dropped = {}
    for column in columns:
        numbers, text = profile.numeric.get(column), profile.text.get(column)
        present = numbers.count if numbers else len(text.counts) if text else 0
        if not present:
            dropped[column] = "all values missing"
        elif config.drop_constant_columns and (
            (numbers and numbers.minimum == numbers.maximum) or (text and len(text.counts) == 1)
        ):
            value = numbers.minimum if numbers else next(iter(text.counts)) if text else None
            dropped[column] = f"constant ({value!r})"
    if len(dropped) == len(columns):
        raise DataError(f"no usable feature column left: {sorted(dropped)} are empty or constant")
    return dropped


def _clip_bounds(sketch: NumericSketch, method: str, config: CleaningConfig) -> tuple[float, float]:
    if method == "iqr":
        low_q, high_q = sketch.quantile([0.25, 0.75])
        spread = (high_q - low_q) * config.iqr_factor
        return float(low_q - spread), float(high_q + spread)
    std = np.sqrt(sketch.variance)
    return sketch.mean - config.zscore_threshold * std, sketch.mean + config.zscore_threshold * std


def make_plan(batches: Any, label: str, task: str, config: CleaningConfig, seed: int) -> tuple[CleaningPlan, Profile]:
    """Pass 1 over ``batches`` (an iterable of raw frames), and every cleaning decision from it.

    Raises:
        DataError: As the in-memory path: no label column, an empty label, one class, a label
            that cannot be regressed, no usable feature column, rules naming unknown columns.
    """
    profile, numeric, categorical, parsed, numeric_label = profile_batches(batches, label, config, seed)
    resolved, integral = _task(profile, label, task, numeric_label)
    features = numeric + categorical
    dropped = {column: "by rule" for column in profile.raw_missing if config.rule(column).drop}
    dropped.update(_useless(profile, features, config))
    numeric = [column for column in numeric if column not in dropped]
    categorical = [column for column in categorical if column not in dropped]
    clip = {}
    for column in numeric:
        method = config.rule(column).outliers or config.outliers
        if method != "none":
            clip[column] = _clip_bounds(profile.numeric[column], method, config)
    drop_missing = [column for column in numeric + categorical
                    if (config.rule(column).missing or config.missing) == "drop"]
    plan = CleaningPlan(label, resolved, numeric, categorical, [c for c in parsed if c in numeric], dropped, clip,
                        drop_missing, config.infinities, integral)
    return plan, profile
