"""Evaluate component: test-split metrics for the Kubeflow UI and the blessing decision."""

from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    preprocessing: Input[Artifact],
    thresholds: dict,
    force_export: bool,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
) -> bool:
    """Scores the model on the test split: accuracy, precision, recall, F1 and ROC AUC
    (classification) or MAE, RMSE and R² (regression), plus the confusion matrix, and checks
    the thresholds.

    Returns:
        Whether to publish the model: blessed, or force_export set.
    """
    import json
    import os

    from tunepipe import artifacts
    from tunepipe.config import EvaluationConfig, validate_section
    from tunepipe.steps import configure_logging, evaluate_step

    configure_logging()
    settings = validate_section(
        EvaluationConfig, {"thresholds": thresholds, "force_export": force_export}, "pipeline parameters"
    )
    scored, decision = evaluate_step(
        model.path, test_data.path, preprocessing.path, settings, evaluation.path, blessing.path
    )
    for name, value in scored.metrics.items():
        metrics.log_metric(name, value)
    if scored.confusion_matrix:
        confusion_matrix.log_confusion_matrix(scored.classes, scored.confusion_matrix)
    evaluation.metadata.update(scored.metrics)
    blessing.metadata[artifacts.META_BLESSED] = decision.blessed
    blessing.metadata[artifacts.META_PUBLISHED] = decision.publish
    # kfp.local takes an output artifact without a file for a broken cache entry (and would
    # re-run this step and everything after it), so both metrics artifacts get one.
    for artifact, content in ((metrics, scored.metrics), (confusion_matrix, scored.confusion_matrix)):
        os.makedirs(os.path.dirname(artifact.path), exist_ok=True)
        with open(artifact.path, "w") as handle:
            json.dump(content, handle)
    return decision.publish
