"""The cleaning plan: what every rule decided, what it did (counted), and the shape of a rule.

A cleaning rule (:mod:`tunepipe.data.rules`) is one object that says, for one concern:

- what it sketches: :meth:`Rule.start` makes its sketch state, :meth:`Rule.observe` adds one batch
  (as the rules before it left that batch);
- what it decides: :meth:`Rule.decide` records its decisions in the :class:`Plan`;
- how it acts: :meth:`Rule.apply` cleans one batch and counts what it did;
- what the data report says about it: :meth:`Rule.describe`.

When a rule decides (``Rule.decides``) matters only for data read as many batches
(:func:`tunepipe.data.clean.clean_batches`); on one batch (:func:`tunepipe.data.clean.clean_table`)
every rule sketches, decides and acts in turn on the whole table, so each sees the table exactly
as the rules before it left it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tunepipe.config import CleaningConfig
from tunepipe.data.sketches import MAX_TRACKED_CATEGORIES, QUANTILE_SAMPLE, CategorySketch, NumericSketch

# What a rule did, column -> action -> count; dataset-level counts under ROWS (no column has an empty name).
Counts = dict[str, dict[str, int]]
ROWS = ""


def count(counts: Counts, column: str, action: str, number: int) -> None:
    """Adds ``number`` to ``counts[column][action]`` (nothing when it is 0)."""
    if number:
        counted = counts.setdefault(column, {})
        counted[action] = counted.get(action, 0) + int(number)


def is_numeric(series: pd.Series) -> bool:
    """A numeric column: numbers, not booleans."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


@dataclass
class Plan:
    """Every cleaning decision, filled in by the rules as they decide.

    Attributes:
        label: The column to predict.
        config: The cleaning rules, global and per column.
        task: ``auto`` until the task rule decides ``classification`` or ``regression``.
        columns: The raw columns, in the source's order (the cleaned data keeps it).
        typed: Whether the batches carry the source's types (``False``: CSV read as text, where a
            column that parses completely is numeric as it stands).
        capacity: Values a sketch keeps exactly (quantile sample, category counts): the rows of a
            one-batch table, so that its quantiles and counts are exact; 0 (default) keeps the
            bounded defaults of :mod:`tunepipe.data.sketches`.
        seed: Seeds the quantile samples (default 0), so the same data gives the same decisions.
        label_kind: ``text``, ``integer`` or ``float``: what the label holds (the type rule decides);
            a numeric class label is written as its integer or float text (``1``, ``1.0``).
        decided: What a rule without a field of its own here decided, by the rule's name.
    """

    label: str
    config: CleaningConfig
    task: str
    columns: list[str]
    typed: bool = True
    capacity: int = 0
    seed: int = 0
    label_kind: str = "text"
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    parsed: set[str] = field(default_factory=set)  # text columns parsed as numbers
    forced: set[str] = field(default_factory=set)  # numeric columns forced categorical by a rule
    dates: set[str] = field(default_factory=set)  # numeric columns of days since the epoch (tunepipe.data.dates)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why
    clip: dict[str, tuple[float, float]] = field(default_factory=dict)
    fills: dict[str, Any] | None = None  # every feature's fill value, once decided
    decided: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """The kept feature columns, in the source's order."""
        kept = set(self.numeric) | set(self.categorical)
        return [column for column in self.columns if column in kept]

    def drop(self, column: str, why: str) -> None:
        """Records that ``column`` is dropped (and why): it is no feature any more."""
        self.dropped[column] = why
        self.numeric = [name for name in self.numeric if name != column]
        self.categorical = [name for name in self.categorical if name != column]

    def labels(self, batch: pd.DataFrame) -> pd.Series:
        """The batch's label, parsed as numbers when it is numeric (a cell that does not parse is missing)."""
        values = batch[self.label]
        if self.label_kind == "text" or is_numeric(values):
            return values
        return pd.to_numeric(values, errors="coerce")

    def sample_size(self) -> int:
        """The quantile sample of a numeric sketch: exact up to ``capacity`` values."""
        return max(QUANTILE_SAMPLE, self.capacity)

    def category_cap(self) -> int:
        """Distinct values a category sketch counts exactly."""
        return max(MAX_TRACKED_CATEGORIES, self.capacity)


class Rule:
    """One cleaning rule; this base sketches, decides and does nothing (override what applies).

    Attributes:
        name: The rule's name (what it is known by in tests and logs).
        decides: When it decides on many batches: ``first`` (from the first batch, so it acts
            from pass 1 on), ``profile`` (from every batch of pass 1: the raw, labelled rows,
            before duplicates are dropped) or ``cleaned`` (from the cleaned rows of pass 3; by
            then the rows are written, so what it decides goes to the schema, not the rows).
        acts_in_pass_1: Whether it acts in pass 1 too, so that the rules after it sketch its
            result (default: the rules deciding on the first batch).
        per_bucket: Whether it needs every copy of a row in one frame (duplicates): on many
            batches it acts in pass 3, on one hash bucket at a time.
    """

    name = "rule"
    decides: Literal["first", "profile", "cleaned"] = "profile"
    acts_in_pass_1 = False
    per_bucket = False

    def start(self, plan: Plan) -> Any:
        """A fresh sketch state (default ``None``: the rule sketches nothing)."""
        return None

    def observe(self, state: Any, batch: pd.DataFrame, plan: Plan) -> None:
        """Adds one batch to the sketch state."""

    def decide(self, state: Any, plan: Plan) -> None:
        """Records the rule's decisions in ``plan``.

        Raises:
            DataError: The data cannot be cleaned by this rule (it names the column or value).
        """

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        """One batch cleaned by the rule (the input is not modified); what it did goes to ``counts``."""
        return batch

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        """Adds the rule's row counts, per-column actions and notes to the data report."""


@dataclass
class Described:
    """What the rules tell the data report: dataset counts, per-column actions, notes.

    Attributes:
        rows: Dataset-level counts (``dropped_*``), in the rules' order.
        columns: Per-column actions, keyed by every raw column in the source's order.
        notes: Sentences for the reader, in the rules' order.
        cleaned: Sketches of the cleaned rows (cells still missing there are filled by preprocess).
    """

    rows: dict[str, int]
    columns: dict[str, dict[str, Any]]
    notes: list[str]
    cleaned: TableSketch


class TableSketch:
    """Sketches of every kept column of a (cleaned) table: fill values, schema and report read them.

    Args:
        plan: Which columns are numeric and categorical, the label, the task and the capacity.
        label: Whether to sketch the label too (default ``True``; it needs the task decided):
            its classes as text (classification) and its numbers (a numeric label).
    """

    def __init__(self, plan: Plan, label: bool = True) -> None:
        self.label_column = plan.label
        self.rng = np.random.default_rng(plan.seed + 1)
        self.numeric = {column: NumericSketch(sample_size=plan.sample_size()) for column in plan.numeric}
        self.text = {column: CategorySketch(cap=plan.category_cap()) for column in plan.categorical}
        text_label = plan.task == "classification" or plan.label_kind == "text"
        self.label = CategorySketch(cap=plan.category_cap()) if label and text_label else None
        numeric_label = plan.task == "regression" or plan.label_kind != "text"
        self.target = NumericSketch(sample_size=0) if label and numeric_label else None
        self.rows = 0

    def features(self) -> list[tuple[str, NumericSketch | CategorySketch]]:
        """Every feature's sketch, numeric columns first (the schema's order)."""
        return [*self.numeric.items(), *self.text.items()]

    def missing(self, column: str) -> int:
        """Cells of ``column`` still missing in the sketched rows."""
        sketch = self.numeric.get(column) or self.text.get(column)
        return sketch.missing if sketch is not None else 0

    def update(self, frame: pd.DataFrame) -> None:
        """Adds the rows of ``frame``."""
        self.rows += len(frame)
        for column, sketch in self.numeric.items():
            sketch.update(frame[column].to_numpy(dtype=np.float64, na_value=np.nan), self.rng)
        for column, text in self.text.items():
            text.update(frame[column])
        if self.label is not None:
            self.label.update(frame[self.label_column])
        if self.target is not None:
            numbers = pd.to_numeric(frame[self.label_column], errors="coerce")
            self.target.update(numbers.to_numpy(dtype=np.float64, na_value=np.nan), self.rng)


class FirstBatchRule(Rule):
    """A rule decided from the first batch alone (one batch: the whole table), which it keeps as its state."""

    decides = "first"
    acts_in_pass_1 = True

    def start(self, plan: Plan) -> list[pd.DataFrame]:
        return []

    def observe(self, state: list[pd.DataFrame], batch: pd.DataFrame, plan: Plan) -> None:
        if not state:
            state.append(batch)
