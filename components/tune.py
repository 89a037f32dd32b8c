"""Tune component: Keras Tuner Hyperband -> best hyperparameters, trial table and HTML report."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output


def tune(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessing: Input[Artifact],
    tuning: dict,
    search_space: dict,
    tune_max_epochs: int,
    tune_iterations: int,
    tuner_root: str,
    seed: int,
    model_name: str,
    data_fingerprint: str,
    gpu_count: int,
    best_hyperparameters: Output[Artifact],
    trials: Output[Artifact],
    tuning_report: Output[HTML],
    metrics: Output[Metrics],
) -> None:
    """Searches the space with Hyperband, resuming a search of the same data and space found under
    tuner_root (empty: tuner-state beside the runs under the pipeline root, found from the trials
    output's URI, so a retried step resumes).

    Inputs: the train and validation splits and the preprocessing spec; the tuning and
    search_space sections. Outputs: best_hyperparameters (HyperParameters.get_config() JSON),
    trials (a CSV of every trial, best first), tuning_report (HTML for the Kubeflow UI) and
    metrics (trials run, failed and resumed, the best trial's validation score: the UI compares
    runs on them)."""
    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.step_folders import write_metrics_file
    from tunepipe.step_logging import configure_logging
    from tunepipe.storage.state_root import resolve_tuner_root
    from tunepipe.tune_step import tune_step

    configure_logging()
    settings = section("tuning", tuning, tune_max_epochs=tune_max_epochs, tune_iterations=tune_iterations,
                       tuner_root=resolve_tuner_root(tuner_root, trials.uri, "tune"))
    summary = tune_step(
        train_data.path, validation_data.path, preprocessing.path, section("search_space", search_space), settings,
        seed,
        best_hyperparameters.path, trials.path, tuning_report.path,
        model_name=model_name, fingerprint=data_fingerprint, gpus=gpu_count,
    )
    best_hyperparameters.metadata.update(summary)
    trials.metadata.update(summary)
    tuning_report.metadata[artifacts.META_BEST_SCORE] = summary[artifacts.META_BEST_SCORE]
    logged = {key: summary[key] for key in (artifacts.META_TRIALS, artifacts.META_FAILED_TRIALS,
                                            artifacts.META_RESUMED_TRIALS, artifacts.META_BEST_SCORE)
              if summary.get(key) is not None}
    for key, value in logged.items():
        metrics.log_metric(key, value)
    write_metrics_file(metrics.path, logged)  # kfp.local's cache needs a file per artifact
