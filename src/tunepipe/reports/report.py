"""The evaluation's HTML report: one self-contained file, readable offline.

Training curves (loss and the main metric against epochs, train and validation), the
confusion matrix as a heatmap, the ROC curve (binary), a per-class table, or for regression
predicted-vs-actual and residual plots; then the metrics, cross-validation and the blessing.
Plots are PNGs drawn with matplotlib's Agg renderer (``Figure`` objects, no pyplot state) and
embedded as base64 ``data:`` URIs, so the page needs no network and no other file; it shows
in the Kubeflow UI as an HTML artifact.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tunepipe.reports.modelcard import CARD_METRIC_INTERVALS, CARD_METRICS, blessing_rows, metric_rows

# Figure size in inches at this resolution: about 900 x 360 pixels per plot row.
DPI = 100


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(str(figure.get_label()))}" src="data:image/png;base64,{encoded}">'


def training_curves(history: dict[str, list[float]]) -> str:
    """Loss and the main metric (accuracy or MAE) per epoch, train and validation."""
    metrics = ["loss", *[name for name in ("accuracy", "mae") if name in history]]
    figure = Figure(figsize=(4.5 * len(metrics), 3.6), label="training curves")
    for index, name in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), index)
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                axes.plot(epochs, history[key], style, marker="o", markersize=3, label=key)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(name)
        axes.legend()
    return _png(figure)


def confusion_heatmap(matrix: list[list[int]], classes: list[str]) -> str:
    """Counts with true classes as rows, darker for more, each cell labelled."""
    counts = np.asarray(matrix)
    size = 1.0 + 0.8 * len(classes)
    figure = Figure(figsize=(size + 1.5, size), label="confusion matrix")
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        axes.text(column, row, str(value), ha="center", va="center",
                  color="white" if value > threshold else "black")
    return _png(figure)


def roc_plot(curve: dict[str, list[float]], auc: float) -> str:
    """The binary ROC curve with the chance diagonal."""
    figure = Figure(figsize=(4.2, 4.0), label="ROC curve")
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(curve["fpr"], curve["tpr"], marker="o", markersize=2, label=f"AUC {auc:.3f}")
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    return _png(figure)


def regression_plots(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """Predicted against actual (with the identity line) and residuals against predicted."""
    y_true, y_pred = np.ravel(y_true).astype(float), np.ravel(y_pred).astype(float)
    figure = Figure(figsize=(9.0, 3.8), label="predicted vs actual and residuals")
    scatter = figure.add_subplot(1, 2, 1)
    scatter.scatter(y_true, y_pred, s=10, alpha=0.7)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    scatter.plot([low, high], [low, high], ":", color="grey")
    scatter.set_xlabel("actual")
    scatter.set_ylabel("predicted")
    scatter.set_title("predicted vs actual")
    residuals = figure.add_subplot(1, 2, 2)
    residuals.scatter(y_pred, y_pred - y_true, s=10, alpha=0.7)
    residuals.axhline(0.0, linestyle=":", color="grey")
    residuals.set_xlabel("predicted")
    residuals.set_ylabel("predicted - actual")
    residuals.set_title("residuals")
    return _png(figure)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table; floats with four decimals, everything escaped."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _blessing_section(blessing: dict[str, Any]) -> str:
    verdict = "blessed" if blessing["blessed"] else "NOT blessed"
    rows = blessing_rows(blessing)
    checks = table(["check", "candidate", "required", "result"], rows) if rows else ""
    return f"<h2>Blessing: {verdict}</h2><p>{html.escape(blessing['reason'])}</p>{checks}"


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f0f0f0}img{max-width:100%}"""


def _unseen_section(unseen: dict[str, int]) -> list[str]:
    """A warning listing the test labels the model never learnt (scored as errors)."""
    if not unseen:
        return []
    rows = [[value, count] for value, count in unseen.items()]
    return [f"<h2>Labels unseen in training</h2><p>{sum(unseen.values())} test rows hold labels the model never "
            "learnt; they are scored as errors, under the class (unseen in training).</p>",
            table(["label", "test rows"], rows)]


def build_report(
    title: str, evaluation: dict[str, Any], history: dict[str, list[float]], blessing: dict[str, Any],
    y_true: np.ndarray, outputs: np.ndarray,
) -> str:
    """The whole report as one HTML string.

    Args:
        title: Heading, e.g. ``classification of 'species'``.
        evaluation: :class:`tunepipe.evaluation.evaluate.Evaluation` as a dict.
        history: Per-epoch training history (``loss``, ``val_loss``, ...).
        blessing: :class:`tunepipe.evaluation.blessing.Blessing` as a dict (``to_dict``).
        y_true, outputs: Test labels (class ids or values) and the model's outputs.
    """
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{evaluation['rows']} test rows.</p>",
             "<h2>Training curves</h2>", training_curves(history)]
    if evaluation["task"] == "classification":
        parts += _unseen_section(evaluation.get("unseen_labels") or {})
        parts += ["<h2>Confusion matrix</h2>", confusion_heatmap(evaluation["confusion_matrix"], evaluation["classes"])]
        if evaluation.get("roc_curve"):
            parts += ["<h2>ROC curve</h2>", roc_plot(evaluation["roc_curve"], evaluation["metrics"]["roc_auc"])]
        parts += ["<h2>Per class</h2>", table(["class", "precision", "recall", "f1", "support"],
                                              [list(row.values()) for row in evaluation["per_class"]])]
    else:
        parts += ["<h2>Predicted vs actual</h2>", regression_plots(y_true, outputs)]
    bootstrap = evaluation.get("bootstrap") or {}
    parts += ["<h2>Test metrics</h2>", table(["metric", "value", "95% CI"], metric_rows(
        {CARD_METRICS: evaluation["metrics"], CARD_METRIC_INTERVALS: evaluation.get("intervals")}))]
    if bootstrap:
        parts.append(f"<p>95% intervals: percentile bootstrap over {bootstrap['resamples']} resamples of the "
                     f"{evaluation['rows']} test rows (seed {bootstrap['seed']}).</p>")
    cv = evaluation.get("cross_validation")
    if cv:
        parts += [f"<h2>{cv['folds']}-fold cross-validation ({cv['rows']} rows, {cv['epochs']} epochs each)</h2>",
                  table(["metric", "mean", "std"], [[k, v["mean"], v["std"]] for k, v in cv["metrics"].items()])]
    parts.append(_blessing_section(blessing))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
