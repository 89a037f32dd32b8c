"""The refusal step: the outcome of a run whose model was not published.

It only reads two JSON files and writes one, so it imports no Keras, TensorFlow or pandas and
starts fast (``tests/unit/test_step_startup.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.contract import StepResult
from tunepipe.reports import modelcard
from tunepipe.step_folders import read_json, write_outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """Evaluate's evaluation and blessing folders, and the report's URI (recorded, not read)."""

    evaluation: PathLike
    blessing: PathLike
    report: str = ""


@dataclass(frozen=True)
class Outputs:
    """The folder of ``outcome.json``."""

    outcome: PathLike


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Writes the outcome of a run whose model was not published: the decision and its numbers;
    returns it as the value."""
    evaluation = read_json(inputs.evaluation, artifacts.EVALUATION_FILE)
    blessing = read_json(inputs.blessing, artifacts.BLESSING_FILE)
    champion = blessing.get("champion")
    outcome = {
        artifacts.META_PUBLISHED: False,
        modelcard.CARD_TASK: evaluation["task"],
        modelcard.CARD_BLESSING: blessing,
        modelcard.CARD_METRICS: evaluation["metrics"],
        modelcard.CARD_METRIC_INTERVALS: evaluation.get("intervals", {}),
        modelcard.CARD_CROSS_VALIDATION: evaluation.get("cross_validation"),
        modelcard.CARD_UNSEEN_LABELS: evaluation.get("unseen_labels", {}),
        artifacts.META_REPORT: inputs.report,
        artifacts.META_CHAMPION_VERSION: champion["version"] if champion else None,
    }
    write_outcome(outputs.outcome, outcome)
    log.info("export: skipped, the model was not blessed (%s)", blessing["reason"])
    return StepResult(value=outcome, metadata={"outcome": {artifacts.META_PUBLISHED: False}})
