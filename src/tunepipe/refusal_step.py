"""The refusal step over folders: the outcome of a run whose model was not published.

Called by the record_refusal component. It only reads two JSON files and writes one, so it
imports no Keras, TensorFlow or pandas and starts fast (``tests/unit/test_step_startup.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.reports import modelcard
from tunepipe.step_folders import read_json, write_outcome

log = logging.getLogger(__name__)


def record_refusal_step(
    evaluation_dir: PathLike, blessing_dir: PathLike, outcome_dir: PathLike, report: str = "",
) -> dict[str, Any]:
    """Writes the outcome of a run whose model was not published: the decision and its numbers."""
    evaluation = read_json(evaluation_dir, artifacts.EVALUATION_FILE)
    blessing = read_json(blessing_dir, artifacts.BLESSING_FILE)
    champion = blessing.get("champion")
    outcome = {
        artifacts.META_PUBLISHED: False,
        modelcard.CARD_TASK: evaluation["task"],
        modelcard.CARD_BLESSING: blessing,
        modelcard.CARD_METRICS: evaluation["metrics"],
        modelcard.CARD_METRIC_INTERVALS: evaluation.get("intervals", {}),
        modelcard.CARD_CROSS_VALIDATION: evaluation.get("cross_validation"),
        modelcard.CARD_UNSEEN_LABELS: evaluation.get("unseen_labels", {}),
        artifacts.META_REPORT: report,
        artifacts.META_CHAMPION_VERSION: champion["version"] if champion else None,
    }
    write_outcome(outcome_dir, outcome)
    log.info("export: skipped, the model was not blessed (%s)", blessing["reason"])
    return outcome
