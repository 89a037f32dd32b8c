"""The tuning report: one self-contained HTML page for the Kubeflow UI's HTML viewer.

A table of every trial, best first, with its score, epochs, Hyperband bracket and round and
its hyperparameters; and a plot of score against epochs, one colour per bracket, with a line
from each promoted trial to the trial it continued. The plot is a PNG embedded as base64, so
the page loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import pandas as pd

# Columns shown before the hyperparameters, in this order.
_LEADING = ["trial_id", "status", "score", "epochs", "bracket", "round", "failure"]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def score_plot_png(trials: pd.DataFrame, objective: str) -> bytes:
    """Score against epochs trained, per bracket, as PNG bytes (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    done = trials[trials["status"] == "COMPLETED"]
    by_id = done.set_index("trial_id")
    for bracket, group in done.groupby(done["bracket"].fillna(0).astype(int)):
        points = axes.scatter(group["epochs"], group["score"], label=f"bracket {bracket}", s=22)
        for _, row in group.iterrows():
            parent = row.get("tuner/trial_id")
            if isinstance(parent, str) and parent in by_id.index:
                axes.plot([by_id.at[parent, "epochs"], row["epochs"]], [by_id.at[parent, "score"], row["score"]],
                          color=points.get_facecolor()[0], linewidth=0.8, alpha=0.6)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epochs trained")
    axes.set_ylabel(objective)
    axes.set_title("Hyperband: score against epochs, per bracket")
    if len(done):
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def tuning_report_html(trials: pd.DataFrame, objective: str, direction: str, budget_line: str) -> str:
    """The report page.

    Args:
        trials: The trial table (see :func:`tunepipe.modelling.tune.trial_table`), best first.
        objective: Name of the objective (``val_loss``, ...), for headings and the axis.
        direction: ``min`` or ``max``: how the table is ordered.
        budget_line: One sentence on the Hyperband budget, shown under the title.
    """
    ordered = trials.sort_values("score", ascending=direction == "min", na_position="last")
    hyperparameters = [c for c in ordered.columns if c not in _LEADING and not c.startswith("tuner/")]
    columns = [c for c in _LEADING if c in ordered.columns] + hyperparameters
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>" for _, row in ordered.iterrows()
    )
    image = base64.b64encode(score_plot_png(trials, objective)).decode()
    counts = trials["status"].value_counts().to_dict()
    summary = ", ".join(f"{count} {str(status).lower()}" for status, count in sorted(counts.items()))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tunepipe tuning report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
th {{ background: #f0f0f0; }}
</style></head>
<body>
<h1>Tuning report</h1>
<p>{html.escape(budget_line)}</p>
<p>{len(trials)} trials: {html.escape(summary)}. Objective: {html.escape(objective)} ({direction}imize);
best first.</p>
<img alt="score against epochs per bracket" src="data:image/png;base64,{image}">
<table><thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
