"""Train component: best hyperparameters -> final model, resumable after preemption."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def train(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessing: Input[Artifact],
    best_hyperparameters: Input[Artifact],
    training: dict,
    search_space: dict,
    train_max_epochs: int,
    seed: int,
    tuner_root: str,
    model_name: str,
    model: Output[Model],
    history: Output[Artifact],
    run_id: str = "",
) -> None:
    """Rebuilds the tuned model from its hyperparameters and trains it with early stopping (best
    weights restored), a learning-rate cut on plateaus and BackupAndRestore (under tuner_root, or
    when empty tunepipe-state under the pipeline root, found from the model URI and run_id, so a
    retried step resumes from its last finished epoch); writes model.keras and the history."""
    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.step_logging import configure_logging
    from tunepipe.storage.tuner_state import default_tuner_root
    from tunepipe.train_step import train_step

    configure_logging()
    summary = train_step(
        train_data.path, validation_data.path, preprocessing.path, best_hyperparameters.path,
        section("search_space", search_space), section("training", training, train_max_epochs=train_max_epochs),
        seed, model.path, history.path, tuner_root=tuner_root or default_tuner_root(model.uri, run_id),
        model_name=model_name,
    )
    model.metadata.update(summary)
    history.metadata[artifacts.META_EPOCHS] = summary[artifacts.META_EPOCHS]
