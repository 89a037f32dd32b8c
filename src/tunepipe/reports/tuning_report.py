"""The tuning report: one self-contained HTML page for the Kubeflow UI's HTML viewer.

A table of every trial, best first, with its score, epochs, size and latency, Hyperband bracket
and round and its hyperparameters; a plot of score against epochs, one colour per bracket, with
a line from each promoted trial to the trial it continued; and plots of score against size and
against latency with the Pareto frontier, the noise band of the best score and the chosen trial
marked (:mod:`tunepipe.modelling.preference`). The plots are PNGs embedded as base64, so the page
loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import pandas as pd

# Columns shown before the hyperparameters, in this order.
_LEADING = ["trial_id", "status", "score", "epochs", "parameters", "latency_b1_us", "latency_b256_us", "bracket",
            "round", "failure"]


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


def frontier(costs: pd.Series, scores: pd.Series, direction: str) -> list[int]:
    """Positions of the Pareto frontier, cheapest first: each is better than every cheaper point."""
    order = sorted(range(len(costs)), key=lambda i: (costs.iloc[i], scores.iloc[i] if direction == "min"
                                                      else -scores.iloc[i]))
    kept: list[int] = []
    for i in order:
        if not kept:
            kept.append(i)
            continue
        score, last = scores.iloc[i], scores.iloc[kept[-1]]
        if (score < last) if direction == "min" else (score > last):
            kept.append(i)
    return kept


def cost_plot_png(trials: pd.DataFrame, objective: str, direction: str, choice: Any) -> bytes:
    """Score against parameters and against latency per row (batch 1), frontier, band and choice marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    done = trials[(trials["status"] == "COMPLETED") & trials["parameters"].notna()].reset_index(drop=True)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    for ax, column, label in ((axes[0], "parameters", "parameters"), (axes[1], "latency_b1_us", "µs per row, batch 1")):
        ax.scatter(done[column], done["score"], s=22, color="tab:blue", label="trial")
        line = frontier(done[column], done["score"], direction)
        ax.step(done[column].iloc[line], done["score"].iloc[line], where="post", color="tab:orange",
                label="frontier")
        low, high = sorted((choice.best_score, choice.best_score + (choice.noise if direction == "min"
                                                                     else -choice.noise)))
        ax.axhspan(low, high, color="tab:green", alpha=0.15, label="within the noise of the best")
        picked = done[done["trial_id"] == choice.chosen_trial]
        ax.scatter(picked[column], picked["score"], s=110, facecolors="none", edgecolors="red", linewidths=2,
                   label=f"chosen ({choice.prefer})")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(objective)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle("Score against cost")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _choice_paragraph(choice: Any) -> str:
    band = f"one standard error of the best score on the validation rows ({choice.noise:.4g})"
    picked = (f"trial {choice.chosen_trial}: {choice.parameters} parameters, {choice.latency_b1_us:.0f} µs per row "
              f"at batch 1, {choice.latency_b256_us:.1f} at batch 256, score {choice.chosen_score:.4g}")
    if choice.prefer == "best":
        return f"<p>tuning.prefer best: the best trial is trained, {html.escape(picked)}.</p>"
    return (f"<p>tuning.prefer {html.escape(choice.prefer)}: among the {choice.candidates} trials within "
            f"{html.escape(band)} of the best (trial {html.escape(choice.best_trial)}, score {choice.best_score:.4g}),"
            f" {html.escape(picked)}.</p>")


def tuning_report_html(trials: pd.DataFrame, objective: str, direction: str, budget_line: str,
                       choice: Any = None) -> str:
    """The report page.

    Args:
        trials: The trial table (see :func:`tunepipe.modelling.tune.trial_table`), best first.
        objective: Name of the objective (``val_loss``, ...), for headings and the axis.
        direction: ``min`` or ``max``: how the table is ordered.
        budget_line: One sentence on the Hyperband budget, shown under the title.
        choice: The :class:`tunepipe.modelling.preference.Choice` (with the costs in ``trials``);
            ``None`` leaves out the cost plots.
    """
    ordered = trials.sort_values("score", ascending=direction == "min", na_position="last")
    hyperparameters = [c for c in ordered.columns if c not in _LEADING and not c.startswith("tuner/")]
    columns = [c for c in _LEADING if c in ordered.columns] + hyperparameters
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>" for _, row in ordered.iterrows()
    )
    image = base64.b64encode(score_plot_png(trials, objective)).decode()
    cost = ""
    if choice is not None and "parameters" in trials.columns:
        cost_image = base64.b64encode(cost_plot_png(trials, objective, direction, choice)).decode()
        cost = (f'{_choice_paragraph(choice)}\n<img alt="score against size and latency" '
                f'src="data:image/png;base64,{cost_image}">')
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
{cost}
<table><thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
