"""The streaming path's data report: the in-memory path's per-column actions and notes, from counts.

Keys and wording follow :mod:`tunepipe.data.cleaning` and :func:`tunepipe.data.ingest.clean`, so
the HTML report, the drift check and readers of ``data_report.json`` need not know which path ran;
``streaming`` in the report says it was this one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunepipe.config import CleaningConfig
from tunepipe.data.cleaning import fill_method
from tunepipe.data.sketches import CategorySketch, NumericSketch
from tunepipe.data.stream_plan import CleaningPlan


class CleanedSketches:
    """Sketches of the cleaned, deduplicated rows (pass 3): fill values, schema and report."""

    def __init__(self, plan: CleaningPlan, seed: int) -> None:
        self.plan = plan
        self.rng = np.random.default_rng(seed + 1)
        self.numeric = {column: NumericSketch() for column in plan.numeric}
        self.text = {column: CategorySketch() for column in plan.categorical}
        self.label = CategorySketch() if plan.task == "classification" else None
        # a numeric label (regression, or integer class ids) is described as a number, as in memory
        self.target = NumericSketch() if plan.task == "regression" or plan.integral_label else None
        self.rows = 0

    def features(self) -> list[tuple[str, NumericSketch | CategorySketch]]:
        """Every feature column's sketch, numeric columns first (the schema's order)."""
        return [*self.numeric.items(), *self.text.items()]

    def update(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        for column, sketch in self.numeric.items():
            sketch.update(frame[column].to_numpy(dtype=np.float64), self.rng)
        for column, text in self.text.items():
            text.update(frame[column])
        if self.label is not None:
            self.label.update(frame[self.plan.label])
        if self.target is not None:
            numbers = pd.to_numeric(frame[self.plan.label], errors="coerce")
            self.target.update(numbers.to_numpy(dtype=np.float64, na_value=np.nan), self.rng)


def column_actions(plan: CleaningPlan, sketches: CleanedSketches, counts: dict[str, dict[str, int]],
                   fills: dict[str, Any], config: CleaningConfig) -> dict[str, dict[str, Any]]:
    """What was done to each column that anything was done to."""
    actions: dict[str, dict[str, Any]] = {column: {"dropped": why} for column, why in plan.dropped.items()}
    for column in plan.parsed_text:
        # CSV is read as text, so every numeric CSV column is "parsed"; only cells that failed are news.
        unparseable = counts.get(column, {}).get("unparseable_cells", 0)
        if unparseable:
            actions.setdefault(column, {}).update(coerced_to_numeric=True, unparseable_cells=unparseable)
    for column, counted in counts.items():
        if counted.get("infinities"):
            actions.setdefault(column, {})["infinities"] = counted["infinities"]
        if counted.get("outliers_clipped"):
            low, high = plan.clip[column]
            method = config.rule(column).outliers or config.outliers
            actions.setdefault(column, {}).update(outliers_clipped=counted["outliers_clipped"], outlier_method=method,
                                                  clip_range=[float(low), float(high)])
        if counted.get("missing"):
            actions.setdefault(column, {}).update(missing=counted["missing"], missing_handling="drop rows")
    for column, sketch in sketches.features():
        if sketch.missing:
            imputation = fill_method(config, column, column in sketches.numeric)
            actions.setdefault(column, {}).update(imputed=sketch.missing, imputation=imputation,
                                                  fill_value=fills[column])
        if column in sketches.text and sketches.text[column].approximate:
            actions.setdefault(column, {})["approximate_counts"] = True
    return actions


def notes(plan: CleaningPlan, report: dict[str, Any]) -> list[str]:
    """The report's notes: dropped columns, an imbalanced label, categories counted approximately."""
    said = []
    for column, why in plan.dropped.items():
        if why == "all values missing":
            said.append(f"column {column!r} dropped: all values missing")
        elif why.startswith("constant"):
            said.append(f"column {column!r} dropped: it has a single value {why[len('constant ('):-1]}")
    balance = report.get("label_balance")
    if balance and balance["imbalanced"]:
        said.append(
            f"label {plan.label!r} is imbalanced: {balance['majority']!r} outnumbers {balance['minority']!r} "
            f"{balance['ratio']:.1f} to 1 (augmentation.oversample can rebalance the training split)"
        )
    for column, actions in report.get("columns", {}).items():
        if actions.get("approximate_counts"):
            said.append(f"column {column!r} has more distinct values than are counted exactly; "
                        "its vocabulary keeps the most frequent")
    return said
