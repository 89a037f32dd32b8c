"""Validate component: every pipeline parameter checked before the run reads any data."""


def validate(
    data_uri: str,
    label: str,
    task: str,
    seed: int,
    tune_max_epochs: int,
    tune_iterations: int,
    train_max_epochs: int,
    tuner_root: str,
    export_root: str,
    model_name: str,
    thresholds: dict,
    gpu_count: int,
    data: dict,
    cleaning: dict,
    images: dict,
    split: dict,
    preprocessing: dict,
    augmentation: dict,
    tuning: dict,
    search_space: dict,
    training: dict,
    evaluation: dict,
    deploy_enabled: bool,
    deploy: dict,
) -> dict:
    """Fails the run at its first step on a wrong parameter, with the message ``tunepipe run``
    gives for the same mistake in a configuration file; the other steps validate only the
    sections they read, some of them after tuning and training.

    Its parameters are the pipeline's, all of them (a test compares the two lists). Returns the
    evaluation section's cross-validation settings (cv_folds, cv_max_rows, cv_placement), which the
    train step reads: passed alone, they keep train's cache when only a threshold, the champion
    rule or force_export changes.
    """
    arguments = dict(locals())  # first line: exactly the parameters above
    from tunepipe.step_logging import configure_logging
    from tunepipe.validate_step import validate_step

    configure_logging()
    return validate_step(arguments)
