"""Tune component: Keras Tuner Hyperband -> best hyperparameters, trial table and HTML report."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output


def tune(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessing: Input[Artifact],
    search_space: dict,
    max_epochs: int,
    factor: int,
    hyperband_iterations: int,
    patience: int,
    objective: str,
    max_failures: int,
    tuner_root: str,
    backend: str,
    workers: int,
    seed: int,
    model_name: str,
    data_fingerprint: str,
    gpu_count: int,
    best_hyperparameters: Output[Artifact],
    trials: Output[Artifact],
    tuning_report: Output[HTML],
) -> None:
    """Searches the space with Hyperband, resuming a search of the same data and space found under
    tuner_root; writes HyperParameters.get_config() JSON, a CSV of every trial (best first) and an
    HTML report for the Kubeflow UI."""
    from tunepipe import artifacts
    from tunepipe.step_logging import configure_logging
    from tunepipe.tune_step import TuningConfig, tune_step, validate_section

    configure_logging()
    tuning = validate_section(
        TuningConfig,
        {"max_epochs": max_epochs, "factor": factor, "hyperband_iterations": hyperband_iterations,
         "patience": patience, "objective": objective, "max_consecutive_failed_trials": max_failures,
         "tuner_root": tuner_root or None, "backend": backend, "workers": workers},
        "pipeline parameters",
    )
    summary = tune_step(
        train_data.path, validation_data.path, preprocessing.path, search_space, tuning, seed,
        best_hyperparameters.path, trials.path, tuning_report.path,
        model_name=model_name, fingerprint=data_fingerprint, gpus=gpu_count,
    )
    best_hyperparameters.metadata.update(summary)
    trials.metadata.update(summary)
    tuning_report.metadata[artifacts.META_BEST_SCORE] = summary[artifacts.META_BEST_SCORE]
