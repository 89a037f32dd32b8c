"""Refusal component: the outcome of a run whose model was not blessed."""

from kfp.dsl import HTML, Artifact, Input, Output


def record_refusal(
    evaluation: Input[Artifact],
    blessing: Input[Artifact],
    report: Input[HTML],
    outcome: Output[Artifact],
) -> str:
    """Records that nothing was published, with the thresholds and champion comparison that failed.

    Args:
        evaluation: Evaluate's evaluation.json; blessing: its blessing.json (the reason).
        report: The HTML report (its URI is recorded).
        outcome: Output: outcome.json, the refusal (published false, the reason, the champion).

    Returns:
        The outcome as JSON, like the export step's.
    """
    import json

    from tunepipe import artifacts
    from tunepipe.refusal_step import record_refusal_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    recorded = record_refusal_step(evaluation.path, blessing.path, outcome.path, report.uri)
    outcome.metadata[artifacts.META_PUBLISHED] = False
    return json.dumps(recorded)
