"""Evaluate component: metrics and pictures for the Kubeflow UI, the HTML report, the blessing."""

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    preprocessing: Input[Artifact],
    history: Input[Artifact],
    evaluation_settings: dict,
    thresholds: dict,
    export_root: str,
    model_name: str,
    seed: int,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    roc_curve: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
    report: Output[HTML],
) -> bool:
    """Scores the model on the test split (and reports train's k-fold cross-validation on small
    data), scores the current champion on the same rows, checks thresholds and the champion rule (a
    paired bootstrap of the difference), and writes the HTML report.

    Args:
        model: Train's model; test_data: the test split; preprocessing: the spec; history:
            train's history and cross-validation scores.
        evaluation_settings: The pipeline's evaluation section (force_export, champion_rule,
            champion_margin; its cv settings are train's); named apart from the evaluation
            output artifact.
        thresholds: The blessing's thresholds, e.g. ``{"accuracy": 0.9}``.
        export_root, model_name: Where the current champion is read from.
        seed: Seed of the bootstrap resamples.
        metrics: Output: the test metrics with their 95 % intervals, the decision and the
            champion comparison, shown in the UI.
        confusion_matrix, roc_curve: Output: ClassificationMetrics the UI draws (ROC: two classes).
        evaluation: Output: evaluation.json (metrics and intervals, per class, cross-validation,
            unseen labels).
        blessing: Output: blessing.json (the decision, the checks, the champion comparison).
        report: Output: the HTML report.

    Returns:
        Whether to publish the model: blessed, or force_export set.
    """

    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.evaluate_step import EvaluateInputs, EvaluateOutputs, evaluate_step, ui_metrics
    from tunepipe.step_folders import write_metrics_file
    from tunepipe.step_logging import configure_logging

    configure_logging()
    settings = section("evaluation", evaluation_settings, thresholds=thresholds)
    scored, decision = evaluate_step(
        EvaluateInputs(model.path, test_data.path, preprocessing.path, history.path),
        EvaluateOutputs(evaluation.path, blessing.path, report.path), settings, export_root, model_name, seed,
    )
    logged = ui_metrics(scored, decision)
    for name, value in logged.items():
        metrics.log_metric(name, value)
    if scored.confusion_matrix:
        confusion_matrix.log_confusion_matrix(scored.classes, scored.confusion_matrix)
    if scored.roc_curve:
        roc_curve.log_roc_curve(scored.roc_curve["fpr"], scored.roc_curve["tpr"], scored.roc_curve["thresholds"])
    ends = ("", artifacts.META_CI_LOW, artifacts.META_CI_HIGH)
    shown = [name + end for name in scored.metrics for end in ends]
    evaluation.metadata.update({key: logged[key] for key in shown if key in logged})
    blessing.metadata[artifacts.META_BLESSED] = decision.blessed
    blessing.metadata[artifacts.META_PUBLISHED] = decision.publish
    for artifact, content in ((metrics, logged), (confusion_matrix, scored.confusion_matrix),
                              (roc_curve, scored.roc_curve or {})):
        write_metrics_file(artifact.path, content)  # kfp.local's cache needs a file per artifact
    return decision.publish
