"""The missing-value rule: each feature's fill value, and the cells filled or the rows dropped.

``missing`` (per column or global; default ``median``) is ``drop`` (the row), ``mean``,
``median``, ``mode`` or ``constant`` (``fill_value``, 0 by default; its text on a categorical
column). ``mean`` and ``median`` fall back to ``mode`` on a categorical column unless the
column's own rule asks for them, which is refused. Every feature gets a fill value, also
where nothing is missing: the served model fills a missing input with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunepipe.config import CleaningConfig
from tunepipe.data.plan import ROWS, Counts, Described, Plan, Rule, TableSketch, count
from tunepipe.data.sketches import CategorySketch, NumericSketch
from tunepipe.errors import DataError


def fill_method(config: CleaningConfig, column: str, numeric: bool) -> str:
    """How ``column``'s missing cells are handled: its rule's or the global ``missing``, with
    ``mean`` and ``median`` falling back to ``mode`` on a categorical column.

    Raises:
        DataError: The column's own rule asks for ``mean`` or ``median`` of a categorical column.
    """
    method = config.resolve(column, "missing")
    if method in ("mean", "median") and not numeric:
        if config.rule(column).missing is not None:
            raise DataError(f"cleaning rule for column {column!r}: {method} needs a numeric column")
        return "mode"
    return method


def fill_value(sketch: NumericSketch | CategorySketch, method: str, constant: Any, column: str,
               integer: bool = False) -> Any:
    """The value ``method`` fills a column with, from a sketch of it (``drop``: the mean, or the mode
    of a categorical column: rows are dropped here, but a served model must still fill a missing input).

    Args:
        integer: Whether the column holds integers (default false): its mode is written as one.

    Raises:
        DataError: A text ``constant`` for a numeric column.
    """
    if isinstance(sketch, CategorySketch):
        if method == "constant":
            return str(constant)
        ordered = sketch.ordered()
        return ordered[0][0] if ordered else None
    if method in ("mean", "drop"):
        return float(sketch.mean) if sketch.count else float("nan")
    if method == "median":
        return float(np.median(sketch.values)) if sketch.values.size else float("nan")
    if method == "mode":
        if not sketch.values.size:
            return None
        values, counts = np.unique(sketch.values, return_counts=True)
        mode = values[np.argmax(counts)]
        return int(mode) if integer else float(mode)
    if isinstance(constant, str):
        raise DataError(f"cleaning: fill_value {constant!r} is text but column {column!r} is numeric")
    return float(constant)


class Missing(Rule):
    """Missing feature cells filled with the column's fill value, or their rows dropped (``drop``)."""

    name = "missing_values"
    decides = "cleaned"

    def start(self, plan: Plan) -> tuple[TableSketch, set[str]]:
        return TableSketch(plan, label=False), set()

    def observe(self, state: tuple[TableSketch, set[str]], batch: pd.DataFrame, plan: Plan) -> None:
        state[0].update(batch)
        state[1].update(column for column in plan.numeric if pd.api.types.is_integer_dtype(batch[column]))

    def decide(self, state: tuple[TableSketch, set[str]], plan: Plan) -> None:
        sketches, integers = state
        fills: dict[str, Any] = {}
        for column in plan.features:
            sketch = sketches.numeric.get(column) or sketches.text[column]
            method = fill_method(plan.config, column, column in plan.numeric)
            constant = plan.config.resolve(column, "fill_value")
            try:
                fills[column] = fill_value(sketch, method, constant, column, column in integers)
            except DataError:
                if sketch.missing:
                    raise
                fills[column] = fill_value(sketch, "median", constant, column)  # nothing to fill with the text
        plan.fills = fills

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        """Rows dropped for ``drop`` columns; other missing cells filled once the fills are decided
        (on many batches they are decided after the rows are written: preprocess fills them)."""
        frame = batch.copy(deep=False)
        drop = np.zeros(len(frame), dtype=bool)
        for column in plan.features:
            missing = frame[column].isna().to_numpy()
            if not missing.any():
                continue
            if fill_method(plan.config, column, column in plan.numeric) == "drop":
                drop |= missing
                count(counts, column, "missing", int(missing.sum()))
            elif plan.fills is not None and plan.fills[column] is not None:
                frame[column] = frame[column].fillna(plan.fills[column])
                count(counts, column, "imputed", int(missing.sum()))
        count(counts, ROWS, "dropped_missing_rows", int(drop.sum()))
        return frame[~drop] if drop.any() else frame

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        fills = plan.fills or {}
        for column in plan.features:
            counted = counts.get(column, {})
            if counted.get("missing"):
                report.columns[column].update(missing=counted["missing"], missing_handling="drop rows")
                continue
            imputed = counted.get("imputed", 0) + report.cleaned.missing(column)  # the latter: filled by preprocess
            if imputed:
                report.columns[column].update(imputed=imputed, imputation=fill_method(plan.config, column,
                                                                                      column in plan.numeric),
                                              fill_value=fills.get(column))
        if counts.get(ROWS, {}).get("dropped_missing_rows"):
            report.rows["dropped_missing_rows"] = counts[ROWS]["dropped_missing_rows"]
