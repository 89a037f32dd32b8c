"""The identifier rule: a feature column that names its row rather than describing it is left out.

An identifier (a customer number, an order key, a person's name) is unique, or nearly, per row.
As a feature it can only be memorised: a served row brings a value the model never saw, and on
the training rows it lets a model tell rows apart without learning anything that carries over.
The rule, decided on the first batch (one batch: the whole table), for a column with at least
:data:`MIN_ROWS` present values:

- **text**: at least :data:`UNIQUE_SHARE` of its present values are distinct;
- **integers**: as many distinct values, and they fill a range no wider than
  :data:`DENSE_SPAN` times their count (a row counter or an auto-increment key: 1, 2, 3 ... with
  gaps). Integer measurements drawn from a wide range (incomes, areas, counts) are almost never
  that dense and that distinct at once: n values drawn at random from a span of 2n share about
  79% distinct values, far from 95%. Floats are never identifiers (a measurement is unique per row).

A per-column ``identifier`` setting decides instead (``false``: a feature whatever it looks like;
``true``: an identifier). An identifier is dropped from the cleaned data and the model, named in
the report and recorded in the schema (``ignored_columns``), so the served model accepts the
column in a request and ignores it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunepipe.data.plan import Counts, Described, FirstBatchRule, Plan, is_numeric

# Present values a column needs before its uniqueness means anything: on a few dozen rows most
# text columns are unique by chance.
MIN_ROWS = 50
# "Nearly unique": at most one value in twenty repeats. A categorical column this distinct gives a
# model one row per category, nothing to learn from.
UNIQUE_SHARE = 0.95
# An integer identifier's values fill a range at most this many times their count.
DENSE_SPAN = 2.0
IDENTIFIER = "identifier"


def identifier_reason(values: pd.Series) -> str | None:
    """Why ``values`` (one column, as the type rule left it) is an identifier, or ``None`` when it is not."""
    present = values.dropna()
    if len(present) < MIN_ROWS:
        return None
    distinct = int(present.nunique())
    if distinct < UNIQUE_SHARE * len(present):
        return None
    shown = f"{distinct} distinct values in {len(present)} rows"
    if not is_numeric(present):
        return f"text, {shown}"
    numbers = present.to_numpy(dtype=np.float64)
    if not np.all(np.mod(numbers, 1) == 0):
        return None
    span = float(numbers.max() - numbers.min() + 1)
    return f"integers {numbers.min():.0f} to {numbers.max():.0f}, {shown}" if span <= DENSE_SPAN * distinct else None


class Identifiers(FirstBatchRule):
    """Feature columns unique, or nearly, per row (:func:`identifier_reason`, or ``identifier: true``),
    left out of the model; ``identifier: false`` keeps a column as a feature."""

    name = "identifiers"
    def decide(self, state: list[pd.DataFrame], plan: Plan) -> None:
        first, found = state[0], dict[str, str]()
        for column in plan.features:
            if column in plan.dates:  # a date unique per row is a time series' clock, not a name
                continue
            setting = plan.config.rule(column).identifier
            reason = "by rule" if setting else identifier_reason(first[column]) if setting is None else None
            if reason:
                found[column] = reason
        for column in found:
            plan.drop(column, IDENTIFIER)
        plan.decided[self.name] = found
        state.clear()

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        gone = [column for column in plan.decided[self.name] if column in batch.columns]
        return batch.drop(columns=gone) if gone else batch

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column, reason in plan.decided.get(self.name, {}).items():
            report.columns[column].update(dropped=IDENTIFIER, identifier=reason)
            report.notes.append(f"column {column!r} left out of the model: an identifier ({reason}); the served "
                                f"model accepts and ignores it (cleaning.columns.{column}.identifier: false makes "
                                "it a feature)")


def identifiers(plan: Plan) -> list[str]:
    """The columns the rule left out, in the source's order (the schema's ``ignored_columns``)."""
    return [column for column in plan.columns if column in plan.decided.get(Identifiers.name, {})]
