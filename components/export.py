"""Export component: publish the next model version with its model card, make it the champion."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output


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
    published_model: Output[Model],
    model_card: Output[Markdown],
) -> str:
    """Publishes <export_root>/<model_name>/<version>/ (the SavedModel at its root; model.keras,
    the model card JSON and Markdown and TF Serving's warm-up file in assets.extra/) atomically,
    after checking every signature reproduces the evaluated model on the raw test split, then
    points <export_root>/<model_name>/CHAMPION at it. An empty export_root publishes into the
    outcome artifact.

    Inputs: the evaluated model, preprocessing spec, test split, evaluation, blessing, best
    hyperparameters, history, cleaned data (schema and data report) and the HTML report's URI.
    Outputs: outcome (outcome.json, the published version's model card and where it is),
    published_model (a Model artifact whose URI is the published version's folder, with its
    version and model name as metadata) and model_card (the model card as Markdown, shown by the UI).

    Returns:
        The outcome as JSON: the model card with the published version's folder.
    """
    import json
    import os
    from pathlib import Path

    from tunepipe import artifacts
    from tunepipe.export_step import ExportInputs, export_step
    from tunepipe.reports.modelcard import render_markdown
    from tunepipe.step_logging import configure_logging

    configure_logging()
    inputs = ExportInputs(model.path, preprocessing.path, test_data.path, evaluation.path, blessing.path,
                          best_hyperparameters.path, history.path, cleaned_data.path)
    card = export_step(inputs, export_root, model_name, outcome.path, {"id": run_id, "name": run_name}, report.uri)
    for key in (artifacts.META_PUBLISHED, artifacts.META_VERSION, artifacts.META_EXPORT_PATH):
        outcome.metadata[key] = card[key]
    # The published version, as a typed Model artifact: its URI is the version's folder (under the
    # outcome artifact's URI when export_root is empty, where the files went).
    location = card[artifacts.META_EXPORT_PATH]
    if not export_root:
        location = outcome.uri.rstrip("/") + "/" + os.path.relpath(location, outcome.path)
    published_model.uri = location
    published_model.metadata.update({artifacts.META_VERSION: card[artifacts.META_VERSION], "model_name": model_name,
                                     artifacts.META_EXPORT_PATH: card[artifacts.META_EXPORT_PATH]})
    Path(model_card.path).parent.mkdir(parents=True, exist_ok=True)
    Path(model_card.path).write_text(render_markdown(card))  # the published model_card.md's text
    return json.dumps(card)
