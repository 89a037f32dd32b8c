"""The tunepipe DAG, declared once: every step, where each of its inputs comes from, what it writes.

validate -> fingerprint -> ingest -> preprocess -> tune -> train -> evaluate, then export (and deploy
when enabled) if the model is blessed, or record_refusal if not. The Kubeflow components
(``components``), the pipeline (``pipelines.pipeline``) and the in-process runner
(``bench/inprocess.py``) all walk :data:`DAG`; a new input of a step is one :class:`Input` here and
one field of the step's ``Inputs``. Policies (GPU placement, retries, caching, resources) are not
declared here: they belong to the pipeline that runs the steps.
"""

from __future__ import annotations

import importlib

from tunepipe.config.parameters import pipeline_defaults
from tunepipe.contract import RUN_ID, RUN_NAME, Branch, Dag, Input, Output, Step

BLESSED = Branch("blessed", "evaluate.Output")
NOT_BLESSED = Branch("not-blessed", "evaluate.Output", otherwise=True)
DEPLOY_ENABLED = Branch("deploy-enabled", "deploy_enabled")

_SPLITS = (
    Input("train_data", "preprocess.train_data", "The training split."),
    Input("validation_data", "preprocess.validation_data", "The validation split."),
    Input("preprocessing", "preprocess.preprocessing", "The preprocessing specification."),
)

VALIDATE = Step(
    "validate", "tunepipe.validate_step",
    "Fails the run at its first step on a wrong pipeline parameter, with the message `tunepipe run` gives for "
    "the same mistake in a configuration file; the other steps validate only the sections they read, some of "
    "them after tuning and training.",
    inputs=tuple(Input(name, name) for name in pipeline_defaults()),
    returns="dict",
    returns_doc="The evaluation section's cross-validation settings (cv_folds, cv_max_rows, cv_placement), which "
                "the train step reads: passed alone, they keep train's cache when only a threshold, the champion "
                "rule or force_export changes.",
)

FINGERPRINT = Step(
    "fingerprint", "tunepipe.fingerprint_step",
    "A content hash of the data behind data_uri, computed uncached in every run (scheduled runs included) so "
    "that ingest's cache key changes exactly when the data does, even at an unchanged URI.",
    inputs=(
        Input("data_uri", "data_uri", "Local path, gs:// or s3:// bucket/prefix, or sample://name."),
        Input("data", "data", "The data section (allowed_roots, max_bytes: the limits checked before hashing).",
              section="data"),
    ),
    returns="str",
    returns_doc="The fingerprint, ``sha256:<hex>``; ingest and tune take it as an input.",
    after=("validate",),
)

INGEST = Step(
    "ingest", "tunepipe.ingest_step",
    "Reads, validates and cleans the source data; checks drift against a baseline schema.",
    inputs=(
        Input("data_uri", "data_uri", "Local path, gs:// or s3:// bucket/prefix, or sample://name: CSV, Parquet, "
              "JSONL, shards, or an image folder with one sub-folder per class."),
        Input("label", "label", "Column to predict (image folders: the column that holds the class)."),
        Input("task", "task", "classification, regression or auto."),
        Input("data_fingerprint", "fingerprint.Output", "Content hash of the source from the fingerprint step; as an "
              "input it is part of this step's cache key, so changed data at the same URI is never served from "
              "the cache."),
        Input("data", "data", "The data section: input limits and the baseline schema.", section="data"),
        Input("cleaning", "cleaning", "The cleaning section: rules, global and per column.", section="cleaning"),
        Input("images", "images", "The images section: size, corrupt-file tolerance, pixel limit.",
              section="images"),
    ),
    outputs=(
        Output("cleaned_data", "Dataset", "Folder with the cleaned Parquet, schema and JSON data report."),
        Output("data_report", "HTML", "The data report as HTML, shown in the Kubeflow UI."),
    ),
)

PREPROCESS = Step(
    "preprocess", "tunepipe.preprocess_step",
    "Splits the data (stratified for classification) and fits normalization statistics and vocabularies on "
    "the training split only; records the encoding and augmentation settings for the model.",
    inputs=(
        Input("cleaned_data", "ingest.cleaned_data", "Ingest's cleaned Parquet, schema and data report."),
        Input("seed", "seed", "Seed of the split and of oversampling."),
        Input("split", "split", "The split section (val_fraction, test_fraction).", section="split"),
        Input("preprocessing_settings", "preprocessing", "The preprocessing section (normalization, max_one_hot); "
              "named apart from the preprocessing output.", section="preprocessing"),
        Input("augmentation", "augmentation", "The augmentation section (recorded for the model; oversample acts "
              "here).", section="augmentation"),
    ),
    outputs=(
        Output("train_data", "Dataset", "The training split."),
        Output("validation_data", "Dataset", "The validation split."),
        Output("test_data", "Dataset", "The test split."),
        Output("preprocessing", "Artifact", "The preprocessing specification (statistics, vocabularies, fill "
               "values, classes)."),
    ),
)

TUNE = Step(
    "tune", "tunepipe.tune_step",
    "Searches the space with Hyperband, resuming a search of the same data and space found under tuner_root.",
    inputs=(
        *_SPLITS,
        Input("tuning", "tuning", "The tuning section.", section="tuning"),
        Input("search_space", "search_space", "The search_space section.", section="search_space"),
        Input("tune_max_epochs", "tune_max_epochs", "tuning.max_epochs.", into="tuning"),
        Input("tune_iterations", "tune_iterations", "tuning.hyperband_iterations.", into="tuning"),
        Input("tuner_root", "tuner_root", "tuning.tuner_root; empty: tuner-state beside the runs under the "
              "pipeline root, so a retried step resumes.", into="tuning", state_root_of="trials"),
        Input("seed", "seed", "Seed of the tuner."),
        Input("model_name", "model_name", "Names the tuner state's folder."),
        Input("data_fingerprint", "fingerprint.Output", "Keys the tuner state to the data."),
        Input("gpu_count", "gpu_count", "GPUs per worker pod of tuning on the cluster."),
    ),
    outputs=(
        Output("best_hyperparameters", "Artifact", "HyperParameters.get_config() JSON, the choice and the sample."),
        Output("trials", "Artifact", "A CSV of every trial, best first."),
        Output("tuning_report", "HTML", "The trial table and chart for the Kubeflow UI."),
        Output("metrics", "Metrics", "Trials run, failed and resumed, the best trial's validation score."),
    ),
    gpu=True,
)

TRAIN = Step(
    "train", "tunepipe.train_step",
    "Rebuilds the tuned model and trains it with early stopping and a per-epoch backup a retried step resumes "
    "from; on small data cross-validates it and exports the folds' average (training.small_data_model).",
    inputs=(
        *_SPLITS,
        Input("best_hyperparameters", "tune.best_hyperparameters", "Tune's chosen hyperparameters."),
        Input("training", "training", "The training section.", section="training"),
        Input("search_space", "search_space", "The search_space section.", section="search_space"),
        Input("cross_validation", "validate.Output", "The evaluation section's cv_folds, cv_max_rows and "
              "cv_placement (validate's output).", section="evaluation"),
        Input("train_max_epochs", "train_max_epochs", "training.max_epochs.", into="training"),
        Input("seed", "seed", "Seed of training and cross-validation."),
        Input("tuner_root", "tuner_root", "Root of the per-epoch backup; empty: tuner-state beside the runs under "
              "the pipeline root.", state_root_of="model"),
        Input("model_name", "model_name", "Names the backup's folder."),
    ),
    outputs=(
        Output("model", "Model", "model.keras."),
        Output("history", "Artifact", "history.json (every epoch's losses, the exported model's kind and cost); "
               "cross_validation.json on small data."),
        Output("metrics", "Metrics", "Epochs trained, best epoch, best validation loss."),
    ),
    gpu=True,
)

EVALUATE = Step(
    "evaluate", "tunepipe.evaluate_step",
    "Scores the model on the test split and the current champion on the same rows, checks the thresholds and "
    "the champion rule, and writes the HTML report.",
    inputs=(
        Input("model", "train.model", "Train's model."),
        Input("test_data", "preprocess.test_data", "The test split."),
        Input("preprocessing", "preprocess.preprocessing", "The preprocessing specification."),
        Input("history", "train.history", "Train's history and cross-validation scores."),
        Input("evaluation_settings", "evaluation", "The evaluation section (force_export, champion_rule, "
              "champion_margin); named apart from the evaluation output.", section="evaluation"),
        Input("thresholds", "thresholds", 'The blessing\'s thresholds, e.g. ``{"accuracy": 0.9}``.',
              into="evaluation_settings"),
        Input("export_root", "export_root", "Where the current champion is read from."),
        Input("model_name", "model_name", "The model's folder under export_root."),
        Input("seed", "seed", "Seed of the bootstrap resamples."),
    ),
    outputs=(
        Output("metrics", "Metrics", "The test metrics with their 95 % intervals, the decision and the champion "
               "comparison."),
        Output("confusion_matrix", "ClassificationMetrics", "The confusion matrix the Kubeflow UI draws."),
        Output("roc_curve", "ClassificationMetrics", "The ROC curve the Kubeflow UI draws (two classes)."),
        Output("evaluation", "Artifact", "evaluation.json: metrics and intervals, per class, cross-validation, "
               "unseen labels."),
        Output("blessing", "Artifact", "blessing.json: the decision, the checks, the champion comparison."),
        Output("report", "HTML", "The HTML report."),
    ),
    returns="bool",
    returns_doc="Whether to publish the model: blessed, or force_export set.",
)

EXPORT = Step(
    "export", "tunepipe.export_step",
    "Publishes <export_root>/<model_name>/<version>/ atomically, after checking every signature reproduces the "
    "evaluated model on the raw test split, then makes it the champion.",
    inputs=(
        Input("model", "train.model", "The evaluated model."),
        Input("preprocessing", "preprocess.preprocessing", "The preprocessing specification."),
        Input("test_data", "preprocess.test_data", "The test split (the SavedModel is verified on it)."),
        Input("evaluation", "evaluate.evaluation", "Evaluate's evaluation.json."),
        Input("blessing", "evaluate.blessing", "Evaluate's blessing.json."),
        Input("best_hyperparameters", "tune.best_hyperparameters", "Tune's hyperparameters and choice."),
        Input("history", "train.history", "Train's history."),
        Input("cleaned_data", "ingest.cleaned_data", "Ingest's schema and data report."),
        Input("report", "evaluate.report", "The HTML report (its URI is recorded).", uri=True),
        Input("export_root", "export_root", "Where versions are published; empty: into the outcome artifact."),
        Input("model_name", "model_name", "The model's folder under export_root."),
        Input("run_id", RUN_ID, "The pipeline run's id, recorded in the model card."),
        Input("run_name", RUN_NAME, "The pipeline run's name, recorded in the model card."),
    ),
    outputs=(
        Output("outcome", "Artifact", "outcome.json: the published version's model card and where it is."),
        Output("published_model", "Model", "The published version's folder, with its version and model name.",
               reference=True),
        Output("model_card", "Markdown", "The model card, shown by the Kubeflow UI."),
    ),
    returns="json",
    returns_doc="The outcome as JSON: the model card with the published version's folder.",
    branches=(BLESSED,),
)

DEPLOY = Step(
    "deploy", "tunepipe.deploy_step",
    "Points a pinned `tunepipe serve` InferenceService at the version export published; nothing when deploy is "
    "off or nothing was published.",
    inputs=(
        Input("outcome", "export.outcome", "The export step's outcome (published, champion_version)."),
        Input("deploy_enabled", "deploy_enabled", "The deploy section's ``enabled`` (the pipeline's condition).",
              into="deploy_settings"),
        Input("deploy_settings", "deploy", "The rest of the deploy section (inference_service, namespace).",
              section="deploy"),
        Input("export_root", "export_root", "Where the version was published; the InferenceService reads it."),
    ),
    returns="json",
    returns_doc="What was done, as JSON.",
    branches=(BLESSED, DEPLOY_ENABLED),
)

RECORD_REFUSAL = Step(
    "record_refusal", "tunepipe.refusal_step",
    "Records that nothing was published, with the thresholds and champion comparison that failed.",
    inputs=(
        Input("evaluation", "evaluate.evaluation", "Evaluate's evaluation.json."),
        Input("blessing", "evaluate.blessing", "Evaluate's blessing.json (the reason)."),
        Input("report", "evaluate.report", "The HTML report (its URI is recorded).", uri=True),
    ),
    outputs=(Output("outcome", "Artifact", "outcome.json: the refusal (published false, the reason, the champion)."),),
    returns="json",
    returns_doc="The outcome as JSON, like the export step's.",
    branches=(NOT_BLESSED,),
)

# Where DAG is, as components name it: their bodies run in a fresh process, which imports it from there.
REFERENCE = "tunepipe.dag:DAG"


def load(reference: str) -> Dag:
    """The DAG a ``module:attribute`` reference names (:data:`REFERENCE`, or a team's own declaration).

    Raises:
        ValueError: ``reference`` is not ``module:attribute`` or does not name a :class:`Dag`.
    """
    module, colon, attribute = reference.partition(":")
    dag = getattr(importlib.import_module(module), attribute, None) if colon else None
    if not isinstance(dag, Dag):
        raise ValueError(f"{reference!r} does not name a Dag (module:attribute)")
    return dag


DAG = Dag(
    (VALIDATE, FINGERPRINT, INGEST, PREPROCESS, TUNE, TRAIN, EVALUATE, EXPORT, DEPLOY, RECORD_REFUSAL),
    parameters={name: type(default) for name, default in pipeline_defaults().items()},
    outcome=("export.Output", "record_refusal.Output"),
)
