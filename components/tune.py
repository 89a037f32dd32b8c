"""Tune component: Keras Tuner Hyperband -> best hyperparameters and the trial table."""

from kfp.dsl import Artifact, Dataset, Input, Output


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
    seed: int,
    best_hyperparameters: Output[Artifact],
    trials: Output[Artifact],
) -> None:
    """Searches the space with Hyperband; writes HyperParameters.get_config() JSON and a
    CSV table of every trial, best first."""
    from tunepipe.config import TuningConfig, validate_section
    from tunepipe.steps import configure_logging, tune_step

    configure_logging()
    tuning = validate_section(
        TuningConfig,
        {"max_epochs": max_epochs, "factor": factor, "hyperband_iterations": hyperband_iterations,
         "patience": patience, "objective": objective},
        "pipeline parameters",
    )
    summary = tune_step(
        train_data.path, validation_data.path, preprocessing.path,
        search_space, tuning, seed, best_hyperparameters.path, trials.path,
    )
    best_hyperparameters.metadata.update(summary)
    trials.metadata.update(summary)
