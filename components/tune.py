"""Tune component: Keras Tuner Hyperband -> best hyperparameters, trial table and HTML report."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output


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
    run_id: str = "",
) -> None:
    """Searches the space with Hyperband, resuming a search of the same data and space found under
    tuner_root (empty: tunepipe-state under the pipeline root, found from the trials URI and
    run_id); writes HyperParameters.get_config() JSON, a CSV of every trial (best first) and an
    HTML report for the Kubeflow UI."""
    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.step_logging import configure_logging
    from tunepipe.storage.tuner_state import default_tuner_root
    from tunepipe.tune_step import tune_step

    configure_logging()
    settings = section("tuning", tuning, tune_max_epochs=tune_max_epochs, tune_iterations=tune_iterations,
                       tuner_root=tuner_root or default_tuner_root(trials.uri, run_id))
    summary = tune_step(
        train_data.path, validation_data.path, preprocessing.path, section("search_space", search_space), settings,
        seed,
        best_hyperparameters.path, trials.path, tuning_report.path,
        model_name=model_name, fingerprint=data_fingerprint, gpus=gpu_count,
    )
    best_hyperparameters.metadata.update(summary)
    trials.metadata.update(summary)
    tuning_report.metadata[artifacts.META_BEST_SCORE] = summary[artifacts.META_BEST_SCORE]
