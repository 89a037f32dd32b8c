"""The data schema (types, ranges, categories, missing fractions) and drift against a baseline.

The first run's schema is saved as an artifact; a later run given it as a baseline
(``data.baseline_schema_uri``) compares its own data against it. Findings are ``fatal``
(a baseline column is missing; the label changed type or is missing) or ``warning`` (a new
column, a feature's type change, unseen categories, a range or missing-fraction shift).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from tunepipe.config import CleaningConfig
from tunepipe.data.dates import day_text
from tunepipe.data.identifiers import identifiers
from tunepipe.data.plan import Plan, TableSketch, is_numeric
from tunepipe.data.sketches import CategorySketch, NumericSketch
from tunepipe.data.types import label_kind
from tunepipe.errors import DataError

SCHEMA_VERSION = 2
# At most this many categories of a column are recorded (the most frequent): enough to
# compare vocabularies, small enough for high-cardinality columns.
MAX_RECORDED_CATEGORIES = 200
# A missing fraction that moves by more than this is reported.
MISSING_SHIFT = 0.1
# A numeric mean that moves by more than this many baseline standard deviations is reported.
MEAN_SHIFT_STDS = 0.5
# Values beyond the baseline range by more than this share of its width are reported.
RANGE_TOLERANCE = 0.1


def numeric_profile(sketch: NumericSketch, missing_fraction: float) -> dict[str, Any]:
    """A numeric column's profile: range, mean and standard deviation of its finite values."""
    if not sketch.count:
        return {"type": "numeric", "missing_fraction": missing_fraction}
    described = sketch.describe()
    return {"type": "numeric", **{key: described[key] for key in ("min", "max", "mean", "std")},
            "missing_fraction": missing_fraction}


def category_profile(sketch: CategorySketch, missing_fraction: float, values: bool = True) -> dict[str, Any]:
    """A categorical column's profile: how many categories and (``values``, default true) the most
    frequent :data:`MAX_RECORDED_CATEGORIES`, most frequent first."""
    profile: dict[str, Any] = {"type": "categorical", "categories": len(sketch.counts)}
    if values:
        profile["values"] = [value for value, _ in sketch.by_count()[:MAX_RECORDED_CATEGORIES]]
    return {**profile, "missing_fraction": missing_fraction}


def filled(sketch: NumericSketch | CategorySketch, fill: Any) -> NumericSketch | CategorySketch:
    """The sketch of a column once its missing cells take ``fill`` (``None``: left missing)."""
    if fill is None:
        return sketch
    return sketch.with_fill(float(fill)) if isinstance(sketch, NumericSketch) else sketch.with_fill(str(fill))


def label_profile(sketches: TableSketch, missing_fraction: float) -> dict[str, Any]:
    """The label's profile: numeric for a numeric label (class ids too), else its classes."""
    if sketches.target is not None:
        return numeric_profile(sketches.target, missing_fraction)
    assert sketches.label is not None
    return category_profile(sketches.label, missing_fraction)


def build_schema(plan: Plan, sketches: TableSketch, missing_fractions: dict[str, float]) -> dict[str, Any]:
    """The schema of the cleaned rows, from their sketches; ``missing_fractions`` are the raw data's.

    Raises:
        DataError: No feature column is left besides the label.
    """
    if not plan.numeric and not plan.categorical:
        raise DataError("the data has no feature columns besides the label")
    fills = plan.fills or {}
    features: dict[str, Any] = {}
    for column, sketch in sketches.features():
        missing = missing_fractions.get(column, 0.0)
        done = filled(sketch, fills.get(column))
        features[column] = (numeric_profile(done, missing) if isinstance(done, NumericSketch)
                            else category_profile(done, missing))
    return {
        "schema_version": SCHEMA_VERSION, "kind": "table", "label": plan.label, "task": plan.task,
        "numeric": list(sketches.numeric), "categorical": list(sketches.text), "features": features,
        "label_profile": label_profile(sketches, missing_fractions.get(plan.label, 0.0)), "rows": sketches.rows,
        **({"ignored_columns": ignored} if (ignored := identifiers(plan)) else {}),
        **({"dates": [column for column in plan.columns if column in plan.dates]} if plan.dates else {}),
    }


def infer_schema(frame: pd.DataFrame, label: str, task: str,
                 missing_fractions: dict[str, float] | None = None) -> dict[str, Any]:
    """The schema of a frame as it is (numbers are numeric columns, the rest categorical).

    Raises:
        DataError: No feature column is left besides the label.
    """
    plan = Plan(label, CleaningConfig(), task, [str(column) for column in frame.columns], capacity=len(frame),
                label_kind=label_kind(frame[label], typed=True))
    plan.numeric = [column for column in plan.columns if column != label and is_numeric(frame[column])]
    plan.categorical = [column for column in plan.columns if column != label and column not in plan.numeric]
    sketches = TableSketch(plan)
    sketches.update(frame)
    return build_schema(plan, sketches, missing_fractions or {})


def load_schema(text: str, source: str) -> dict[str, Any]:
    """Parses a saved schema, refusing text that is not one."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{source}: baseline schema is not JSON: {error}") from None
    if not isinstance(schema, dict) or "label" not in schema or "features" not in schema:
        raise DataError(f"{source}: not a tunepipe schema (no 'label' and 'features')")
    return schema


def _type_of(schema: dict[str, Any], column: str) -> str | None:
    if column == schema["label"]:
        profile = schema.get("label_profile") or {}
        return profile.get("type")
    profile = schema["features"].get(column)
    return profile.get("type") if profile else None


def _finding(column: str, kind: str, severity: str, message: str) -> dict[str, str]:
    return {"column": column, "kind": kind, "severity": severity, "message": message}


def _numeric_shift(column: str, old: dict[str, Any], new: dict[str, Any], date: bool = False) -> list[dict[str, str]]:
    """Range and mean shifts of a numeric column; a date's range only (new data is expected to be
    later, so its mean moves by design), shown as dates."""
    if "min" not in old or "min" not in new:
        return []
    found = []
    width = max(old["max"] - old["min"], 1e-12)
    shown = day_text if date else (lambda value: f"{value:.4g}")
    if new["min"] < old["min"] - RANGE_TOLERANCE * width or new["max"] > old["max"] + RANGE_TOLERANCE * width:
        found.append(_finding(column, "range_shift", "warning",
                              f"column {column!r}: range [{shown(new['min'])}, {shown(new['max'])}] leaves the "
                              f"baseline's [{shown(old['min'])}, {shown(old['max'])}]"))
    if not date and abs(new["mean"] - old["mean"]) > MEAN_SHIFT_STDS * max(old["std"], 1e-12):
        found.append(_finding(column, "mean_shift", "warning",
                              f"column {column!r}: mean moved from {old['mean']:.4g} to {new['mean']:.4g} "
                              f"(more than {MEAN_SHIFT_STDS} baseline standard deviations)"))
    return found


def compare_schemas(baseline: dict[str, Any], current: dict[str, Any]) -> list[dict[str, str]]:
    """Drift findings of ``current`` against ``baseline``, fatal ones first."""
    found: list[dict[str, str]] = []
    label = baseline["label"]
    old_columns = [*baseline["features"], label]
    new_columns = [*current["features"], current["label"]]
    for column in old_columns:
        if column not in new_columns:
            found.append(_finding(column, "missing_column", "fatal",
                                  f"column {column!r} of the baseline schema is missing from the data"))
    for column in new_columns:
        if column not in old_columns:
            found.append(_finding(column, "new_column", "warning", f"column {column!r} is new (not in the baseline)"))
    for column in (c for c in old_columns if c in new_columns):
        old_type, new_type = _type_of(baseline, column), _type_of(current, column)
        if old_type and new_type and old_type != new_type:
            severity = "fatal" if column == label else "warning"
            found.append(_finding(column, "type_change", severity,
                                  f"column {column!r} changed type from {old_type} to {new_type}"))
            continue
        old = baseline["features"].get(column) or baseline.get("label_profile") or {}
        new = current["features"].get(column) or current.get("label_profile") or {}
        if new_type == "categorical" and old.get("values") is not None and len(old["values"]) == old["categories"]:
            unseen = sorted(set(new.get("values", [])) - set(old["values"]))
            if unseen:
                found.append(_finding(column, "unseen_categories", "warning",
                                      f"column {column!r} has {len(unseen)} categories unseen in the baseline: "
                                      f"{unseen[:10]}"))
        elif new_type == "numeric":
            found.extend(_numeric_shift(column, old, new, column in current.get("dates", [])))
        shift = new.get("missing_fraction", 0.0) - old.get("missing_fraction", 0.0)
        if abs(shift) > MISSING_SHIFT:
            found.append(_finding(column, "missing_shift", "warning",
                                  f"column {column!r}: missing fraction moved from "
                                  f"{old.get('missing_fraction', 0.0):.3f} to {new.get('missing_fraction', 0.0):.3f}"))
    return sorted(found, key=lambda item: item["severity"] != "fatal")


def check_drift(baseline: dict[str, Any], current: dict[str, Any], source: str) -> list[dict[str, str]]:
    """Compares schemas and fails on fatal findings; returns every finding for the report.

    Raises:
        DataError: A fatal finding (missing column, the label's type changed), each explained.
    """
    if baseline["label"] != current["label"]:
        raise DataError(
            f"drift check against {source}: the baseline predicts {baseline['label']!r}, this run {current['label']!r}"
        )
    findings = compare_schemas(baseline, current)
    fatal = [item["message"] for item in findings if item["severity"] == "fatal"]
    if fatal:
        raise DataError(f"drift check against {source} failed:\n  " + "\n  ".join(fatal))
    return findings
