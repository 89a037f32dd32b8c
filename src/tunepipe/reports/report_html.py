"""The data report as one self-contained HTML page (plots inlined as base64 PNGs).

Kubeflow shows an ``HTML`` artifact in its UI as it is, so the page carries no scripts and
no external files. It lists the source, row counts, every cleaning action with its counts,
drift findings, the label distribution, per-column statistics before and after cleaning,
and plots: a missingness chart, the label distribution and histograms of numeric columns.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import pandas as pd

# Histograms of at most this many numeric columns keep the page light.
MAX_HISTOGRAMS = 12
# Rows sampled for histograms: plenty for a picture, cheap for a million-row dataset.
HISTOGRAM_SAMPLE = 50_000


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _bar(labels: list[str], values: list[float], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(max(4.0, 0.35 * len(labels)), 3))
    axis.bar(range(len(values)), values)
    axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    axis.set_title(title)
    return _png(figure)


def _histograms(frame: pd.DataFrame, columns: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = columns[:MAX_HISTOGRAMS]
    if not shown:
        return ""
    sample = frame[shown].sample(min(len(frame), HISTOGRAM_SAMPLE), random_state=0)
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    for axis, column in zip(axes.flat, shown, strict=False):
        values = sample[column].to_numpy(dtype=np.float64)
        axis.hist(values[np.isfinite(values)], bins=30)
        axis.set_title(column, fontsize=8)
        axis.tick_params(labelsize=6)
    for axis in list(axes.flat)[len(shown):]:
        axis.axis("off")
    return _png(figure)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return str(value)


STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:left}th{background:#eee}"
    ".fatal{color:#b00}.warning{color:#a60}"
)


def render(report: dict[str, Any], frame: pd.DataFrame, numeric: list[str]) -> str:
    """The HTML page for ``report`` (the JSON data report) and the cleaned ``frame``."""
    parts = [f"<h1>Data report</h1><p>source: <code>{html.escape(str(report.get('source')))}</code></p>"]
    counts = {k: v for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    parts.append("<h2>Rows</h2>" + _table([counts], list(counts)))
    if report.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>")
    actions = [{"column": c, "actions": a} for c, a in report.get("columns", {}).items()]
    parts.append("<h2>Cleaning actions</h2>" + _table(actions, ["column", "actions"]))
    drift = report.get("drift")
    if drift is not None:
        parts.append(f"<h2>Drift against {html.escape(str(drift.get('baseline')))}</h2>")
        parts.append(_table(drift.get("findings", []), ["severity", "kind", "column", "message"]))
    balance = report.get("label_balance")
    if balance:
        flag = " (imbalanced)" if balance.get("imbalanced") else ""
        parts.append(f"<h2>Label distribution{flag}</h2><p>majority/minority ratio {balance['ratio']:.2f}</p>")
        parts.append(_bar(list(balance["counts"]), list(balance["counts"].values()), "rows per class"))
    before, after = report.get("before", {}), report.get("after", {})
    if before:
        stats = [{"column": c, "before": before[c], "after": after.get(c, "dropped")} for c in before]
        parts.append("<h2>Columns before and after cleaning</h2>" + _table(stats, ["column", "before", "after"]))
        missing = {c: s.get("missing_fraction", 0.0) for c, s in before.items()}
        parts.append(_bar(list(missing), list(missing.values()), "missing fraction before cleaning"))
    if numeric:
        parts.append("<h2>Histograms (after cleaning)</h2>" + _histograms(frame, numeric))
    images = report.get("images")
    if images:
        parts.append("<h2>Images</h2>" + _table([{k: v for k, v in images.items() if k != "corrupt_skipped"}],
                                                  [k for k in images if k != "corrupt_skipped"]))
        parts.append("<h3>Skipped as corrupt</h3>" + _table(images["corrupt_skipped"], ["file", "error"]))
    head = f"<head><meta charset='utf-8'><title>Data report</title><style>{STYLE}</style></head>"
    return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"
