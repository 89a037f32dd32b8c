"""Train component: best hyperparameters -> final model, resumable after preemption."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


def train(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessing: Input[Artifact],
    best_hyperparameters: Input[Artifact],
    training: dict,
    search_space: dict,
    cross_validation: dict,
    train_max_epochs: int,
    seed: int,
    tuner_root: str,
    model_name: str,
    model: Output[Model],
    history: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    """Rebuilds the tuned model from its hyperparameters and trains it with early stopping (best
    weights restored), a learning-rate cut on plateaus and BackupAndRestore (under tuner_root, or
    when empty tuner-state under the pipeline root, so a retried step resumes from its last
    finished epoch).

    On small data (train + validation under cv_max_rows rows) it then cross-validates the
    configuration (cv_folds models, for the best epoch's count) and, with
    training.small_data_model bagged (default), the model is the average of the fold models.

    Inputs: the train and validation splits, the preprocessing spec and the best hyperparameters
    (tune's); the training and search_space sections; cross_validation: the evaluation section's
    cv_folds, cv_max_rows and cv_placement (validate's output). Outputs: model (model.keras),
    history (history.json: every epoch's losses, the exported model's kind and cost;
    cross_validation.json on small data) and metrics (epochs trained, best epoch, best
    validation loss: the Kubeflow UI compares runs on them)."""
    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.step_folders import write_metrics_file
    from tunepipe.step_logging import configure_logging
    from tunepipe.storage.state_root import resolve_tuner_root
    from tunepipe.train_step import train_step

    configure_logging()
    summary = train_step(
        train_data.path, validation_data.path, preprocessing.path, best_hyperparameters.path,
        section("search_space", search_space), section("training", training, train_max_epochs=train_max_epochs),
        seed, model.path, history.path, tuner_root=resolve_tuner_root(tuner_root, model.uri, "train"),
        model_name=model_name, cross_validation=section("evaluation", cross_validation),
    )
    model.metadata.update(summary)
    history.metadata[artifacts.META_EPOCHS] = summary[artifacts.META_EPOCHS]
    logged = {key: summary[key] for key in (artifacts.META_EPOCHS, artifacts.META_BEST_EPOCH,
                                            artifacts.META_BEST_VAL_LOSS)}
    for key, value in logged.items():
        metrics.log_metric(key, value)
    write_metrics_file(metrics.path, logged)  # kfp.local's cache needs a file per artifact
