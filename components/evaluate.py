"""Evaluate component: trained model + test split -> metrics shown in the Kubeflow UI."""

from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    preprocessing: Input[Artifact],
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
) -> None:
    """Scores the model on the test split: accuracy, precision, recall, F1 and ROC AUC
    (classification) or MAE, RMSE and R² (regression), plus the confusion matrix."""
    import json
    import os

    from tunepipe.steps import configure_logging, evaluate_step

    configure_logging()
    result = evaluate_step(model.path, test_data.path, preprocessing.path, evaluation.path)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    if result.confusion_matrix:
        confusion_matrix.log_confusion_matrix(result.classes, result.confusion_matrix)
    evaluation.metadata.update(result.metrics)
    # kfp.local takes an output artifact without a file for a broken cache entry (and would
    # re-run this step and everything after it), so both metrics artifacts get one.
    for artifact, content in ((metrics, result.metrics), (confusion_matrix, result.confusion_matrix)):
        os.makedirs(os.path.dirname(artifact.path), exist_ok=True)
        with open(artifact.path, "w") as handle:
            json.dump(content, handle)
