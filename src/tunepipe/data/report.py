"""The data report and the schema of cleaned data, from sketches (one table or many batches alike).

The report counts every row dropped, lists every action per column (each rule words its own,
:meth:`~tunepipe.data.plan.Rule.describe`), adds notes, the label balance and per-column
statistics before (the raw columns, every row) and after cleaning (the cleaned rows, filled).
The schema is :func:`~tunepipe.data.schema.build_schema` of the same sketches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tunepipe.data.plan import Counts, Described, Plan, TableSketch, is_numeric
from tunepipe.data.rules import RULES
from tunepipe.data.schema import build_schema, category_profile, filled, numeric_profile
from tunepipe.data.sketches import QUANTILE_SAMPLE, CategorySketch, NumericSketch

# The order the report lists the rules' row counts in (a rule's count not named here comes after them).
ROW_COUNTS = (
    "dropped_without_label", "dropped_infinite_rows", "duplicate_rows", "dropped_duplicates", "dropped_missing_rows",
)


class RawSketch:
    """The raw columns as read, over every row: missing cells and a numeric or category profile.

    A column is numeric as the source types it (the first batch's type); a CSV read as text
    takes the type rule's decision instead (a column that parses is numeric as it stands).
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows = 0
        self.missing: dict[str, int] = {}
        self.numeric: dict[str, NumericSketch] = {}
        self.text: dict[str, CategorySketch] = {}
        self.rng = np.random.default_rng(plan.seed)

    def _numeric(self, column: str, values: pd.Series) -> bool:
        if is_numeric(values) or self.plan.typed:
            return is_numeric(values)
        return column in self.plan.numeric or (column == self.plan.label and self.plan.label_kind != "text")

    def update(self, batch: pd.DataFrame) -> None:
        """Adds one raw batch."""
        self.rows += len(batch)
        for column in batch.columns:
            values = batch[column]
            self.missing[column] = self.missing.get(column, 0) + int(values.isna().sum())
            if column not in self.numeric and column not in self.text:
                if self._numeric(column, values):
                    self.numeric[column] = NumericSketch(sample_size=0)
                else:
                    self.text[column] = CategorySketch(cap=self.plan.category_cap())
            if column in self.numeric:
                numbers = values if is_numeric(values) else pd.to_numeric(values, errors="coerce")
                array = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
                self.numeric[column].update(array[np.isfinite(array)], self.rng)  # described over the finite values
            else:
                self.text[column].update(values.astype(str))  # a missing cell is a category here, as pandas counts

    def fractions(self) -> dict[str, float]:
        """Each raw column's share of missing cells."""
        return {column: missing / max(self.rows, 1) for column, missing in self.missing.items()}

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every raw column's profile (the report's ``before``)."""
        fractions = self.fractions()
        return {column: numeric_profile(self.numeric[column], fractions[column]) if column in self.numeric
                else category_profile(self.text[column], fractions[column], values=False) for column in self.missing}



@dataclass
class Cleaned:
    """What cleaning produced: the plan, the counts, sketches of the raw and the cleaned rows.

    Attributes:
        frame: The cleaned table (one batch), or a sample of its rows for the report's plots.
        buckets: Hash buckets of pass 3 (1 for one batch).
    """

    plan: Plan
    counts: Counts
    raw: RawSketch
    cleaned: TableSketch
    frame: pd.DataFrame
    buckets: int = 1


def balance_of_counts(counts: dict[Any, int], imbalance_ratio: float) -> dict[str, Any]:
    """Class counts (most frequent first), the majority/minority ratio and whether it reaches ``imbalance_ratio``."""
    ordered = sorted(((str(name), int(count)) for name, count in counts.items()), key=lambda item: -item[1])
    ratio = float(ordered[0][1] / ordered[-1][1])
    return {
        "counts": dict(ordered),
        "ratio": ratio,
        "imbalanced": ratio >= imbalance_ratio,
        "minority": ordered[-1][0],
        "majority": ordered[0][0],
    }


def _after(cleaned: Cleaned) -> dict[str, dict[str, Any]]:
    """The cleaned columns (label included) once filled, in the source's order."""
    plan, sketches = cleaned.plan, cleaned.cleaned
    fills, rows = plan.fills or {}, max(sketches.rows, 1)
    after: dict[str, dict[str, Any]] = {}
    for column in plan.columns:
        sketch: NumericSketch | CategorySketch | None = sketches.numeric.get(column) or sketches.text.get(column)
        if sketch is not None:
            done = filled(sketch, fills.get(column))
            missing = done.missing / rows
            after[column] = (numeric_profile(done, missing) if isinstance(done, NumericSketch)
                             else category_profile(done, missing, values=False))
        elif column == plan.label and plan.task == "classification" and sketches.label is not None:
            after[column] = category_profile(sketches.label, 0.0, values=False)
        elif column == plan.label and sketches.target is not None:
            after[column] = numeric_profile(sketches.target, 0.0)
    return after


def _notes(plan: Plan, described: Described, report: dict[str, Any]) -> list[str]:
    notes = list(described.notes)
    balance = report.get("label_balance")
    if balance and balance["imbalanced"]:
        notes.append(
            f"label {plan.label!r} is imbalanced: {balance['majority']!r} outnumbers {balance['minority']!r} "
            f"{balance['ratio']:.1f} to 1: the training loss weighs the classes (preprocessing.class_weights) and, "
            "for two classes, the decision threshold is chosen on validation rows (training.decision_metric)"
        )
    for column, actions in report["columns"].items():
        if actions.get("approximate_counts"):
            notes.append(f"column {column!r} has more distinct values than are counted exactly; "
                         "its vocabulary keeps the most frequent")
    return notes


def describe(cleaned: Cleaned, many: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema and the data report of ``cleaned``; ``many`` (default false): read as many batches,
    which both record (``streaming``)."""
    plan, sketches, config = cleaned.plan, cleaned.cleaned, cleaned.plan.config
    described = Described({}, {column: {} for column in plan.columns}, [], sketches)
    for rule in RULES:
        rule.describe(plan, cleaned.counts, described)
    for column, text in sketches.text.items():
        if text.approximate:
            described.columns[column]["approximate_counts"] = True
    rows = sorted(described.rows.items(), key=lambda item: ROW_COUNTS.index(item[0]) if item[0] in ROW_COUNTS
                  else len(ROW_COUNTS))
    report: dict[str, Any] = {"rows_in": cleaned.raw.rows, "rows_out": sketches.rows, **dict(rows)}
    if plan.task == "classification" and sketches.label is not None:
        report["label_balance"] = balance_of_counts(sketches.label.counts, config.imbalance_ratio)
    report["columns"] = {column: actions for column, actions in described.columns.items() if actions}
    report["notes"] = _notes(plan, described, report)
    report.update(before=cleaned.raw.profiles(), after=_after(cleaned))
    schema = build_schema(plan, sketches, cleaned.raw.fractions())
    if "label_balance" in report:  # what preprocess weighs classes by (tunepipe.modelling.imbalance)
        schema["label_imbalanced"] = report["label_balance"]["imbalanced"]
    if many:
        report["streaming"] = {"buckets": cleaned.buckets, "passes_over_source": 2,
                               "quantiles": f"bottom-k samples of {QUANTILE_SAMPLE:,} values per column"}
        schema["streaming"] = True
    fills = plan.fills or {}
    schema["fill_values"] = {column: None if fills.get(column) is None
                             else (str(fills[column]) if column in plan.categorical else fills[column])
                             for column in [*plan.numeric, *plan.categorical]}
    return schema, report
