"""The tunepipe DAG: ingest -> preprocess -> tune -> train -> evaluate -> export.

:func:`create_pipeline` assembles it for one image. Every setting of a run is a top-level
pipeline parameter (defaults from :class:`tunepipe.config.Config`), so it shows and can be
changed in the Kubeflow UI; placement, caching and retry policy are set on tasks here, never
inside components.
"""

from typing import Any

from kfp import dsl
from kfp.dsl import Artifact

from components import build_components
from tunepipe.config import Config

PIPELINE_NAME = "tunepipe"
_DEFAULTS = Config()
_DEFAULT_SEARCH_SPACE = _DEFAULTS.search_space.model_dump(exclude_none=True)


def create_pipeline(image: str | None = None) -> Any:
    """Returns the pipeline function with every component built for ``image``.

    Args:
        image: Project image the steps run in; ``None`` means ``tunepipe:<version>``
            (ignored by ``kfp.local.SubprocessRunner``, which runs in this environment).
    """
    steps = build_components(image)

    @dsl.pipeline(name=PIPELINE_NAME, description="Data to a tuned, evaluated, exported Keras model.")
    def tunepipe_pipeline(
        data_uri: str,
        label: str,
        export_root: str,
        task: str = _DEFAULTS.data.task,
        data_fingerprint: str = "",
        seed: int = _DEFAULTS.seed,
        val_fraction: float = _DEFAULTS.split.val_fraction,
        test_fraction: float = _DEFAULTS.split.test_fraction,
        tune_max_epochs: int = _DEFAULTS.tuning.max_epochs,
        tune_factor: int = _DEFAULTS.tuning.factor,
        tune_iterations: int = _DEFAULTS.tuning.hyperband_iterations,
        tune_patience: int = _DEFAULTS.tuning.patience,
        tune_objective: str = _DEFAULTS.tuning.objective,
        search_space: dict = _DEFAULT_SEARCH_SPACE,
        train_max_epochs: int = _DEFAULTS.training.max_epochs,
        train_patience: int = _DEFAULTS.training.patience,
        model_name: str = _DEFAULTS.export.model_name,
    ) -> Artifact:
        """Trains, tunes, evaluates and exports a Keras model for a tabular dataset.

        Args:
            data_uri: CSV or Parquet file to learn from.
            label: Column to predict.
            export_root: Folder under which <model_name>/<version>/ is published.
            task: classification, regression or auto (inferred from the label).
            data_fingerprint: Content hash of the data; part of the cache key so new data
                at the same URI is never served from the cache (the CLI fills it in).
            seed: Seed of the split, the tuner and training.
            val_fraction: Share of rows held out for validation.
            test_fraction: Share of rows held out for the test.
            tune_max_epochs: Hyperband max_epochs: most epochs one model trains.
            tune_factor: Hyperband reduction factor between rounds.
            tune_iterations: Times the Hyperband schedule is repeated.
            tune_patience: Early-stopping patience inside a trial.
            tune_objective: val_loss or val_accuracy.
            search_space: Hyperparameter ranges (see configs/default.yaml).
            train_max_epochs: Upper bound on final-training epochs.
            train_patience: Early-stopping patience of final training.
            model_name: Folder name of the model under export_root.
        """
        ingested = steps.ingest(
            data_uri=data_uri, label=label, task=task, data_fingerprint=data_fingerprint
        ).set_display_name("ingest")
        cleaned = ingested.outputs["cleaned_data"]
        prepared = steps.preprocess(
            cleaned_data=cleaned, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        ).set_display_name("preprocess")
        splits = {
            "train_data": prepared.outputs["train_data"],
            "validation_data": prepared.outputs["validation_data"],
            "preprocessing": prepared.outputs["preprocessing"],
        }
        tuned = steps.tune(
            **splits, search_space=search_space, max_epochs=tune_max_epochs, factor=tune_factor,
            hyperband_iterations=tune_iterations, patience=tune_patience,
            objective=tune_objective, seed=seed,
        ).set_display_name("tune")
        trained = steps.train(
            **splits, best_hyperparameters=tuned.outputs["best_hyperparameters"],
            search_space=search_space, max_epochs=train_max_epochs, patience=train_patience, seed=seed,
        ).set_display_name("train")
        evaluated = steps.evaluate(
            model=trained.outputs["model"], test_data=prepared.outputs["test_data"],
            preprocessing=prepared.outputs["preprocessing"],
        ).set_display_name("evaluate")
        exported = steps.export(
            model=trained.outputs["model"], preprocessing=prepared.outputs["preprocessing"],
            test_data=prepared.outputs["test_data"], evaluation=evaluated.outputs["evaluation"],
            best_hyperparameters=tuned.outputs["best_hyperparameters"],
            history=trained.outputs["history"], cleaned_data=cleaned,
            export_root=export_root, model_name=model_name,
        ).set_display_name("export")
        return exported.outputs["model_card"]

    return tunepipe_pipeline
