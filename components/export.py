"""Export component: publish the next model version with its model card."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def export(
    model: Input[Model],
    preprocessing: Input[Artifact],
    test_data: Input[Dataset],
    evaluation: Input[Artifact],
    best_hyperparameters: Input[Artifact],
    history: Input[Artifact],
    cleaned_data: Input[Dataset],
    export_root: str,
    model_name: str,
    model_card: Output[Artifact],
) -> str:
    """Writes <export_root>/<model_name>/<version>/ (SavedModel, model.keras, model card)
    after checking the SavedModel reproduces the evaluated model on the raw test split.

    Returns:
        The published version's folder.
    """
    from tunepipe import artifacts
    from tunepipe.steps import configure_logging, export_step

    configure_logging()
    card = export_step(
        model.path, preprocessing.path, test_data.path, evaluation.path,
        best_hyperparameters.path, history.path, cleaned_data.path,
        export_root, model_name, model_card.path,
    )
    model_card.metadata[artifacts.META_VERSION] = card[artifacts.META_VERSION]
    model_card.metadata[artifacts.META_EXPORT_PATH] = card[artifacts.META_EXPORT_PATH]
    return str(card[artifacts.META_EXPORT_PATH])
