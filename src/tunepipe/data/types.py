"""The type rule: which columns are numeric and which categorical, decided on the first batch.

A numeric column stays as it is; a text column whose cells parse as numbers (a share of at
least ``numeric_text_share`` of its present cells, 0.9 by default) is parsed in every batch, the
cells that do not parse becoming missing (counted); a per-column ``type`` forces either way.
A date or timestamp column (:mod:`tunepipe.data.dates`) is held as days since the epoch, a number;
its cells that do not parse become missing (counted). Everything else is categorical and held as
text. On one batch the first batch is the table;
on many, a type that a later batch contradicts is kept (its cells that do not parse become
missing), since a column's type cannot change once rows are written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunepipe.data.dates import date_share, to_days
from tunepipe.data.plan import Counts, Described, FirstBatchRule, Plan, count, is_numeric

# The share check of numeric-looking text first looks at this many cells, so wide text
# columns of a million rows are not parsed in full just to be rejected.
SNIFF_CELLS = 2000


def holds_booleans(present: pd.Series) -> bool:
    """Whether a column's present cells are Python or numpy booleans (they stay categorical)."""
    if pd.api.types.is_string_dtype(present) and not pd.api.types.is_object_dtype(present):
        return False  # a string column holds no booleans
    return bool(present.iloc[:SNIFF_CELLS].map(lambda value: isinstance(value, bool | np.bool_)).all())


def as_text(series: pd.Series) -> pd.Series:
    """The column as text (``str`` of each value), missing cells as ``None``."""
    missing = series.isna()
    text = series.astype(str).astype(object)
    return text.where(~missing, None) if missing.any() else text


def _kind(series: pd.Series, column: str, plan: Plan) -> str:
    """``numeric``, ``parsed`` (text read as numbers), ``forced`` (numbers held as text), ``date``
    (:mod:`tunepipe.data.dates`) or ``categorical``."""
    config, forced = plan.config, plan.config.rule(column).type
    if forced == "categorical":
        return "forced" if is_numeric(series) else "categorical"
    if forced == "date" or pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if is_numeric(series):
        return "numeric"
    present = series.dropna()
    if forced == "auto" and not present.empty and date_share(present.iloc[:SNIFF_CELLS]) >= config.numeric_text_share:
        return "date"
    if pd.api.types.is_bool_dtype(series) or present.empty or holds_booleans(present):
        return "categorical"  # booleans stay categorical, with or without missing values
    if forced == "numeric":
        return "parsed"
    if not plan.typed and pd.to_numeric(present, errors="coerce").notna().all():
        return "parsed"  # CSV read as text: numbers as the file holds them, whatever coerce_numeric_text says
    share = config.numeric_text_share
    sniffed = pd.to_numeric(present.iloc[:SNIFF_CELLS], errors="coerce").notna().mean()
    if not config.coerce_numeric_text or sniffed < share:
        return "categorical"
    parsed = int(pd.to_numeric(present, errors="coerce").notna().sum())
    return "parsed" if parsed / len(present) >= share else "categorical"


def label_kind(labels: pd.Series, typed: bool) -> str:
    """``integer`` or ``float`` for a numeric label (as the batch types it), else ``text``.

    Text read from a CSV (``typed`` false) is numeric when every present cell parses, as a
    typed reader would have read it.
    """
    if is_numeric(labels):
        return "integer" if pd.api.types.is_integer_dtype(labels) else "float"
    present = labels.dropna()
    if typed or present.empty or holds_booleans(present):
        return "text"
    numbers = pd.to_numeric(present, errors="coerce")
    if not numbers.notna().all():
        return "text"
    return "integer" if pd.api.types.is_integer_dtype(numbers) else "float"


class Types(FirstBatchRule):
    """Numeric, parsed, forced and categorical feature columns, and the label's kind, from the first batch."""

    name = "types"
    def decide(self, state: list[pd.DataFrame], plan: Plan) -> None:
        first = state[0]
        for column in plan.columns:
            if column == plan.label or column in plan.dropped:
                continue
            kind = _kind(first[column], column, plan)
            (plan.numeric if kind in ("numeric", "parsed", "date") else plan.categorical).append(column)
            if kind == "date":
                plan.dates.add(column)
            elif kind == "parsed":
                plan.parsed.add(column)
            elif kind == "forced":
                plan.forced.add(column)
        plan.label_kind = label_kind(first[plan.label], plan.typed)
        state.clear()

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        frame = batch.copy(deep=False)
        for column in frame.columns:
            values = frame[column]
            if column in plan.dates:
                days = to_days(values, epoch_numbers=is_numeric(values))
                count(counts, column, "unparseable_cells", int((days.isna() & values.notna()).sum()))
                frame[column] = days
            elif column in plan.parsed or (column in plan.numeric and not is_numeric(values)):
                numbers = pd.to_numeric(values, errors="coerce")
                count(counts, column, "unparseable_cells", int((numbers.isna() & values.notna()).sum()))
                frame[column] = numbers
            elif column in plan.categorical or column in plan.forced:
                frame[column] = as_text(values)
        return frame

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column in plan.columns:
            actions: dict[str, Any] = report.columns[column]
            if column in plan.forced:
                actions["forced_type"] = "categorical"
            unparseable = counts.get(column, {}).get("unparseable_cells", 0)
            if column in plan.dates:
                actions.update(parsed_as_date=True, unparseable_cells=unparseable)
                if unparseable:
                    report.notes.append(f"column {column!r}: {unparseable} cells are not dates; they are missing "
                                        "and filled as other missing cells")
            # CSV read as text parses every numeric column: only the cells that failed are news there
            if column in plan.parsed and (plan.typed or unparseable):
                actions.update(coerced_to_numeric=True, unparseable_cells=unparseable)
