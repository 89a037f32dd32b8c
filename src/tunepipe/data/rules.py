"""The cleaning rules, declared once, in the order they act (:data:`RULES`).

Columns dropped by rule; types forced, or numeric-looking text parsed (bad cells counted);
identifiers left out; infinities; rows without a label; all-empty and constant columns; duplicate rows; outliers
clipped; missing values handled; the task (and the label written as text or numbers). The
label is never clipped or imputed. Each rule is a :class:`~tunepipe.data.plan.Rule`: what it
sketches, what it decides, how it acts on a batch and what the report says; one table is
cleaned as one batch, a larger one batch by batch (:mod:`tunepipe.data.clean`), by the same rules.

A new rule is one class here and its place in :data:`RULES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunepipe.data.identifiers import Identifiers
from tunepipe.data.missing import Missing
from tunepipe.data.plan import ROWS, Counts, Described, Plan, Rule, TableSketch, count, is_numeric
from tunepipe.data.sketches import NumericSketch
from tunepipe.data.task import Task
from tunepipe.data.types import Types
from tunepipe.errors import DataError


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (reports are JSON)."""
    return value.item() if isinstance(value, np.generic) else value


class DropByRule(Rule):
    """Columns a per-column rule drops (``drop: true``); checks the label and the rules' columns first."""

    name = "drop_by_rule"
    decides = "first"
    acts_in_pass_1 = True

    def decide(self, state: Any, plan: Plan) -> None:
        if plan.label not in plan.columns:
            raise DataError(f"label column {plan.label!r} not found; columns are {plan.columns}")
        unknown = sorted(set(plan.config.columns) - set(plan.columns))
        if unknown:
            raise DataError(f"cleaning rules name columns that are not in the data: {unknown}")
        if plan.config.rule(plan.label).drop:
            raise DataError(f"cleaning rules drop the label column {plan.label!r}")
        for column in plan.columns:
            if plan.config.rule(column).drop:
                plan.drop(column, "by rule")

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        return batch.drop(columns=[column for column, why in plan.dropped.items() if why == "by rule"])

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column, why in plan.dropped.items():
            if why == "by rule":
                report.columns[column]["dropped"] = why


class Infinities(Rule):
    """Infinite numbers, counted in every row (the label too): missing (``infinities: missing``,
    the default), or the labelled row dropped (``drop``; rows without a label count as such)."""

    name = "infinities"
    decides = "first"
    acts_in_pass_1 = True

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        frame = batch.copy(deep=False)
        rows = np.zeros(len(frame), dtype=bool)
        for column in [*plan.numeric, plan.label]:
            if column not in frame.columns or not pd.api.types.is_float_dtype(frame[column]):
                continue
            infinite = np.isinf(frame[column].to_numpy())
            if not infinite.any():
                continue
            count(counts, column, "infinities", int(infinite.sum()))
            if plan.config.infinities == "drop":
                rows |= infinite
            else:
                frame[column] = frame[column].mask(infinite)
        if plan.config.infinities != "drop":
            return frame
        rows &= plan.labels(frame).notna().to_numpy()
        count(counts, ROWS, "dropped_infinite_rows", int(rows.sum()))
        return frame[~rows] if rows.any() else frame

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column, counted in counts.items():
            if counted.get("infinities"):
                report.columns[column]["infinities"] = counted["infinities"]
        if plan.config.infinities == "drop":
            report.rows["dropped_infinite_rows"] = counts.get(ROWS, {}).get("dropped_infinite_rows", 0)


class Unlabelled(Rule):
    """Rows without a label are dropped (and counted); a label with no value at all is refused."""

    name = "rows_without_label"
    acts_in_pass_1 = True

    def start(self, plan: Plan) -> list[int]:
        return [0]

    def observe(self, state: list[int], batch: pd.DataFrame, plan: Plan) -> None:
        state[0] += int(plan.labels(batch).notna().sum())

    def decide(self, state: list[int], plan: Plan) -> None:
        if not state[0]:
            raise DataError(f"label column {plan.label!r} has no values")

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        labelled = plan.labels(batch).notna().to_numpy()
        count(counts, ROWS, "dropped_without_label", int((~labelled).sum()))
        return batch if labelled.all() else batch[labelled]

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        report.rows["dropped_without_label"] = counts.get(ROWS, {}).get("dropped_without_label", 0)


class Useless(Rule):
    """All-empty feature columns (always) and single-valued ones (``drop_constant_columns``, default
    true) are dropped with a note, judged on the labelled rows (duplicates do not change which
    values a column holds, so before or after dropping them is the same)."""

    name = "empty_and_constant_columns"

    def start(self, plan: Plan) -> dict[str, list[Any]]:
        return {}  # column -> [present cells, first present value, whether another value differs]

    def observe(self, state: dict[str, list[Any]], batch: pd.DataFrame, plan: Plan) -> None:
        for column in plan.features:
            present = batch[column].dropna()
            seen = state.setdefault(column, [0, None, False])
            if present.empty:
                continue
            if not seen[0]:
                seen[1] = plain(present.iloc[0])
            seen[0] += len(present)
            if not seen[2]:
                values = present.to_numpy(dtype=np.float64) if is_numeric(present) else present.to_numpy()
                seen[2] = bool((values != seen[1]).any())

    def decide(self, state: dict[str, list[Any]], plan: Plan) -> None:
        features = plan.features
        if not features:
            raise DataError(f"no feature column left: {sorted(plan.dropped)} are dropped by rule or identifiers "
                            "(cleaning.columns.<column>.identifier: false keeps one as a feature)")
        empty = [column for column in features if not state[column][0]]
        if empty and len(empty) == len(features):
            raise DataError(f"every feature column is empty (all values missing): {empty}")
        constant = [column for column in features if plan.config.drop_constant_columns
                    and column not in empty and not state[column][2]]
        if len(empty) + len(constant) == len(features):
            raise DataError(f"no usable feature column left: {empty + constant} are empty or constant")
        for column in empty:
            plan.drop(column, "all values missing")
        for column in constant:
            plan.drop(column, f"constant ({state[column][1]!r})")

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        gone = [column for column, why in plan.dropped.items() if why != "by rule" and column in batch.columns]
        return batch.drop(columns=gone) if gone else batch

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        useless = [(column, why) for column, why in plan.dropped.items() if why != "by rule"]
        for column, why in useless:
            report.columns[column]["dropped"] = why
        for column, why in useless:
            if why == "all values missing":
                report.notes.append(f"column {column!r} dropped: all values missing")
        for column, why in useless:
            if why.startswith("constant ("):
                report.notes.append(f"column {column!r} dropped: it has a single value {why[len('constant ('):-1]}")


def duplicate_rows(frame: pd.DataFrame) -> np.ndarray:
    """Exact duplicates of an earlier row, as ``frame.duplicated()`` finds them, about 10x faster.

    Rows are hashed first (vectorised, one pass per column); only rows whose hash occurs
    more than once are compared exactly, so a hash collision can never drop a distinct row.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        mask[np.flatnonzero(candidates)] = frame[candidates].duplicated().to_numpy()
    return mask


# From this share of repeated rows the report says so in a note: about one row in twenty is where
# copies start to weigh on what a model learns and on how rows are split (a rough, table-agnostic
# line for a reader's attention; every repeat is counted whatever the share).
MANY_DUPLICATES_SHARE = 0.05


class Duplicates(Rule):
    """Exact duplicate rows: counted always (``duplicate_rows``), dropped only with ``drop_duplicates``
    (default false). Found in one frame that holds every copy of a row: the table, or one hash bucket.

    Copies are kept by default because they are observations: on a table of few columns, many real
    records share one row, and dropping them reweights the data (the model would learn the distinct
    rows, not the population) and shrinks it. The split and the folds treat a natural copy as any
    other row, so the test split and cross-validation measure the same thing. Dropping stays a
    setting for data known to hold double writes of one record.
    """

    name = "duplicates"
    decides = "first"
    per_bucket = True

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        if batch.empty:
            return batch
        repeated = duplicate_rows(batch)
        count(counts, ROWS, "duplicate_rows", int(repeated.sum()))
        if not plan.config.drop_duplicates:
            return batch
        count(counts, ROWS, "dropped_duplicates", int(repeated.sum()))
        return batch[~repeated] if repeated.any() else batch

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        rows = counts.get(ROWS, {})
        repeats, dropped = rows.get("duplicate_rows", 0), rows.get("dropped_duplicates", 0)
        report.rows["duplicate_rows"] = repeats
        report.rows["dropped_duplicates"] = dropped
        seen = report.cleaned.rows + dropped + rows.get("dropped_missing_rows", 0)  # the rows the rule saw
        if repeats and repeats >= MANY_DUPLICATES_SHARE * max(seen, 1):
            kept = ("dropped (cleaning.drop_duplicates)" if dropped else
                    "kept as observations (cleaning.drop_duplicates: true drops them)")
            report.notes.append(f"{repeats} of {seen} rows ({repeats / max(seen, 1):.0%}) repeat an earlier row "
                                f"exactly; {kept}")


class Outliers(Rule):
    """Clipping (``outliers``, per column or global; default ``none``): ``iqr`` to Q1 - k IQR ..
    Q3 + k IQR (``iqr_factor``, 1.5), ``zscore`` to the mean +/- t std (``zscore_threshold``, 3)."""

    name = "outliers"

    def start(self, plan: Plan) -> tuple[np.random.Generator, dict[str, NumericSketch]]:
        sketches = {column: NumericSketch(sample_size=plan.sample_size() if self._method(plan, column) == "iqr" else 0)
                    for column in plan.numeric if self._method(plan, column) != "none"}
        return np.random.default_rng(plan.seed), sketches

    @staticmethod
    def _method(plan: Plan, column: str) -> str:
        return plan.config.resolve(column, "outliers")

    def observe(self, state: tuple[np.random.Generator, dict[str, NumericSketch]], batch: pd.DataFrame,
                plan: Plan) -> None:
        rng, sketches = state
        for column, sketch in sketches.items():
            sketch.update(batch[column].to_numpy(dtype=np.float64, na_value=np.nan), rng)

    def decide(self, state: tuple[np.random.Generator, dict[str, NumericSketch]], plan: Plan) -> None:
        config, sketches = plan.config, state[1]
        for column in plan.numeric:
            if column not in sketches:
                continue
            sketch = sketches[column]
            if self._method(plan, column) == "iqr":
                low_q, high_q = sketch.quantile([0.25, 0.75])
                spread = (high_q - low_q) * config.iqr_factor
                plan.clip[column] = (float(low_q - spread), float(high_q + spread))
            else:
                std = np.sqrt(sketch.variance)
                plan.clip[column] = (sketch.mean - config.zscore_threshold * std,
                                     sketch.mean + config.zscore_threshold * std)

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        frame = batch
        for column, (low, high) in plan.clip.items():
            values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            outside = int(((values < low) | (values > high)).sum())
            if outside:
                frame = frame.copy(deep=False) if frame is batch else frame
                frame[column] = np.clip(values, low, high)
                count(counts, column, "outliers_clipped", outside)
        return frame

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column, (low, high) in plan.clip.items():
            clipped = counts.get(column, {}).get("outliers_clipped")
            if clipped:
                report.columns[column].update(outliers_clipped=clipped, outlier_method=self._method(plan, column),
                                              clip_range=[float(low), float(high)])


# The order the rules act in; a rule sees each batch as the rules before it left it.
RULES: list[Rule] = [DropByRule(), Types(), Identifiers(), Infinities(), Unlabelled(), Useless(), Duplicates(),
                     Outliers(), Missing(), Task()]

__all__ = ["RULES", "TableSketch", "duplicate_rows"]
