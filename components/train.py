"""Train component: best hyperparameters -> final model with early stopping."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def train(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessing: Input[Artifact],
    best_hyperparameters: Input[Artifact],
    search_space: dict,
    max_epochs: int,
    patience: int,
    seed: int,
    model: Output[Model],
    history: Output[Artifact],
) -> None:
    """Rebuilds the tuned model from its hyperparameters and trains it with
    EarlyStopping(restore_best_weights=True); writes model.keras and the history."""
    from tunepipe import artifacts
    from tunepipe.config import TrainingConfig, validate_section
    from tunepipe.steps import configure_logging, train_step

    configure_logging()
    training = validate_section(
        TrainingConfig, {"max_epochs": max_epochs, "patience": patience}, "pipeline parameters"
    )
    summary = train_step(
        train_data.path, validation_data.path, preprocessing.path, best_hyperparameters.path,
        search_space, training, seed, model.path, history.path,
    )
    model.metadata.update(summary)
    history.metadata[artifacts.META_EPOCHS] = summary[artifacts.META_EPOCHS]
