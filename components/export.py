"""Export component: publish the next model version with its model card, make it the champion."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output


def export(
    model: Input[Model],
    preprocessing: Input[Artifact],
    test_data: Input[Dataset],
    evaluation: Input[Artifact],
    blessing: Input[Artifact],
    best_hyperparameters: Input[Artifact],
    history: Input[Artifact],
    cleaned_data: Input[Dataset],
    report: Input[HTML],
    export_root: str,
    model_name: str,
    run_id: str,
    run_name: str,
    outcome: Output[Artifact],
) -> str:
    """Publishes <export_root>/<model_name>/<version>/ (SavedModel, model.keras, model card
    JSON and Markdown) atomically, after checking the SavedModel reproduces the evaluated model
    on the raw test split, then points <export_root>/<model_name>/CHAMPION at it. An empty
    export_root publishes into the outcome artifact.

    Returns:
        The outcome as JSON: the model card with the published version's folder.
    """
    import json

    from tunepipe import artifacts
    from tunepipe.export_step import ExportInputs, export_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    inputs = ExportInputs(model.path, preprocessing.path, test_data.path, evaluation.path, blessing.path,
                          best_hyperparameters.path, history.path, cleaned_data.path)
    card = export_step(inputs, export_root, model_name, outcome.path, {"id": run_id, "name": run_name}, report.uri)
    for key in (artifacts.META_PUBLISHED, artifacts.META_VERSION, artifacts.META_EXPORT_PATH):
        outcome.metadata[key] = card[key]
    return json.dumps(card)
