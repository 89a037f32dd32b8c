"""The task rule: classification or regression (``auto``: from the label), and the label written for it.

``auto`` means classification for a text or boolean label, or a numeric one whose values are
all integers and at most :data:`MAX_INTEGER_CLASSES` distinct (class ids); regression otherwise.
A class label is written as text: a numeric one as its integer or float text (``1``, ``1.0``),
as the first batch types it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunepipe.data.plan import Counts, Plan, Rule, is_numeric
from tunepipe.data.sketches import CategorySketch
from tunepipe.data.types import as_text
from tunepipe.errors import DataError

# An integer label with at most this many distinct values is taken for class ids.
MAX_INTEGER_CLASSES = 20


class LabelSketch:
    """The label's distinct values (numbers counted by value) and whether every number is an integer.

    Args:
        numeric: Whether the label holds numbers.
    """

    def __init__(self, numeric: bool) -> None:
        self.numeric = numeric
        self.classes = CategorySketch(cap=MAX_INTEGER_CLASSES * 50)  # enough to tell class ids from a quantity
        self.integral = True

    def update(self, present: pd.Series) -> None:
        """Adds the present labels of one batch (numbers already parsed when the label is numeric)."""
        if self.numeric:
            numbers = present.to_numpy(dtype=np.float64)
            self.integral &= bool(np.all(np.equal(np.mod(numbers, 1), 0)))
            present = pd.Series(numbers).astype(str)
        self.classes.update(present)

    def auto(self) -> str:
        """The task ``auto`` infers: classification for text, booleans or few integers."""
        few = not self.classes.approximate and len(self.classes.counts) <= MAX_INTEGER_CLASSES
        return "classification" if not self.numeric or (self.integral and few) else "regression"


def infer_task(labels: pd.Series) -> str:
    """Classification for text, boolean or few distinct integer labels; regression otherwise."""
    sketch = LabelSketch(is_numeric(labels))
    sketch.update(labels.dropna())
    return sketch.auto()


def label_values(labels: pd.Series, plan: Plan) -> pd.Series:
    """The label as written: numbers for regression, text of the class for classification."""
    numbers = labels if plan.label_kind == "text" or is_numeric(labels) else pd.to_numeric(labels, errors="coerce")
    if plan.task == "regression":
        return numbers
    if plan.label_kind == "text":
        return as_text(labels)
    return numbers.astype(np.int64 if plan.label_kind == "integer" else np.float64).astype(str).astype(object)


class Task(Rule):
    """Decides the task from the label (as it is once every rule before has acted) and writes the label for it."""

    name = "task"

    def start(self, plan: Plan) -> LabelSketch:
        return LabelSketch(plan.label_kind != "text")

    def observe(self, state: LabelSketch, batch: pd.DataFrame, plan: Plan) -> None:
        state.update(plan.labels(batch).dropna())

    def decide(self, state: LabelSketch, plan: Plan) -> None:
        task = state.auto() if plan.task == "auto" else plan.task
        if task == "regression" and not state.numeric:
            raise DataError(f"label column {plan.label!r} is not numeric, so it cannot be regressed")
        if plan.label_kind == "integer" and not state.integral:
            plan.label_kind = "float"
        if task == "classification" and len(state.classes.counts) < 2:
            only = next(iter(state.classes.counts))
            if plan.label_kind == "integer":
                only = str(int(float(only)))
            raise DataError(f"label column {plan.label!r} has a single class {only!r}; classification needs two")
        plan.task = task

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        frame = batch.copy(deep=False)
        frame[plan.label] = label_values(frame[plan.label], plan)
        return frame
