"""The metrics a threshold may name: which metrics each task reports and which way each is better.

Configuration checks a threshold's metric where the file is read (:class:`~tunepipe.config.EvaluationConfig`),
and the blessing decision (:mod:`tunepipe.evaluation.blessing`) reads the same names to compare a
measured value with its bound: the vocabulary is declared here, below both.
"""

from __future__ import annotations

from tunepipe.errors import ConfigError

HIGHER_IS_BETTER = frozenset({
    "accuracy", "precision", "recall", "f1", "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc", "r2",
})
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss"})
REPORTED = {
    "classification": frozenset({"accuracy", "precision", "recall", "f1", "precision_weighted", "recall_weighted",
                                 "f1_weighted", "roc_auc", "log_loss"}),
    "regression": frozenset({"mae", "rmse", "r2", "mape"}),
}
# The metric the champion comparison uses: the one a user would quote first for the task.
MAIN_METRIC = {"classification": "accuracy", "regression": "rmse"}


def validate_thresholds(thresholds: dict[str, float], task: str) -> None:
    """Raises :class:`ConfigError` for a metric that the task does not report.

    Args:
        thresholds: Metric name to bound.
        task: ``classification`` or ``regression``; any other value (``auto``, the task not yet
            known where the configuration is read) accepts a metric that either task reports,
            so that a misspelt metric is refused before the run, and one of the other task's
            metrics once ingest has settled the task.
    """
    reported = REPORTED.get(task) or frozenset().union(*REPORTED.values())
    for metric in thresholds:
        if metric not in reported:
            which = task if task in REPORTED else "any task"
            raise ConfigError(
                f"threshold on unknown metric {metric!r} for {which} (known: {', '.join(sorted(reported))})"
            )
