"""The tunepipe DAG: fingerprint -> ingest -> preprocess -> tune -> train -> evaluate -> export.

:func:`create_pipeline` assembles it for its images and GPU placement. Every setting of a
run is a top-level pipeline parameter with a default that works (the shipped sample data,
publishing into the run's own artifacts), so a run can be started from the Kubeflow UI with
one click; placement, caching and retry policy are set on tasks here, never in components.
"""

from pathlib import Path
from typing import Any

from kfp import dsl, kubernetes

from components import build_components
from pipelines.placement import GpuPlacement
from tunepipe.config import Config
from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI
from tunepipe.modelling.k8s_tuning import RUN_AS_USER

PIPELINE_NAME = "tunepipe"
_DEFAULTS = Config()
_DEFAULT_SEARCH_SPACE = _DEFAULTS.search_space.model_dump(exclude_none=True)
_DEFAULT_THRESHOLDS: dict = {}
_DEFAULT_CLEANING = _DEFAULTS.cleaning.model_dump(exclude_none=True)
_DEFAULT_ALLOWED_ROOTS: list = []
_DEFAULT_AUGMENTATION = _DEFAULTS.augmentation.model_dump()
# Preemptible (spot) GPU nodes vanish; a retried step starts again on another node.
RETRIES = 3
RETRY_BACKOFF = "60s"
# Every task's scratch space: TMPDIR, HOME and the library caches of the image all point here.
SCRATCH_VOLUME, SCRATCH_PATH = "scratch", "/tmp"


def _least_privilege(task: Any, security_context: bool) -> Any:
    """An emptyDir at /tmp and, when ``security_context``, the image's non-root user for ``task``.

    kfp-kubernetes 2.17 sets only runAsUser, runAsGroup and runAsNonRoot on the task's container
    (KFP adds the rest, its docstring says; see k8s/README.md); no readOnlyRootFilesystem, fsGroup or pod-level
    context. No size limit on the emptyDir: the tune step stages its input splits there.
    """
    kubernetes.empty_dir_mount(task, volume_name=SCRATCH_VOLUME, mount_path=SCRATCH_PATH)
    if security_context:
        kubernetes.set_security_context(task, run_as_user=RUN_AS_USER, run_as_group=RUN_AS_USER, run_as_non_root=True)
    return task


def _place_on_gpu(task: Any, gpus: Any, placement: GpuPlacement | None) -> Any:
    """Requests GPUs and the GPU node pool for ``task``; nothing when ``placement`` is None."""
    if placement is None:
        return task
    task.set_accelerator_type(placement.resource).set_accelerator_limit(gpus)
    if placement.node_selector:
        kubernetes.add_node_selector(task, *placement.node_selector)
    if placement.toleration_key:
        kubernetes.add_toleration(
            task, key=placement.toleration_key, operator="Exists", effect=placement.toleration_effect
        )
    return task.set_retry(num_retries=RETRIES, backoff_duration=RETRY_BACKOFF)


def create_pipeline(
    image: str | None = None, gpu_image: str | None = None, placement: GpuPlacement | None = None,
    security_context: bool = True,
) -> Any:
    """Returns the pipeline function with every component built for its image.

    Args:
        image: Project image of the CPU steps; ``None`` means ``tunepipe:<version>``
            (ignored by ``kfp.local.SubprocessRunner``, which runs in this environment).
        gpu_image: Image of the tune and train steps (default: ``image``).
        placement: GPU resource, node selector and toleration of the tune and train steps;
            ``None`` (local runs, clusters without GPUs) requests no GPU.
        security_context: Give every task the image's non-root user as its security context
            (default on); off for KFP backends older than the kfp-kubernetes field (KFP 2.14,
            as on the kind cluster), which refuse a spec that holds it.
    """
    steps = build_components(image, gpu_image)

    @dsl.pipeline(name=PIPELINE_NAME, description="Data to a tuned, evaluated, exported Keras model.")
    def tunepipe_pipeline(
        data_uri: str = DEFAULT_SAMPLE_URI,
        label: str = DEFAULT_SAMPLE_LABEL,
        task: str = _DEFAULTS.data.task,
        baseline_schema_uri: str = _DEFAULTS.data.baseline_schema_uri,
        allowed_roots: list = _DEFAULT_ALLOWED_ROOTS,
        max_rows: int = _DEFAULTS.data.max_rows,
        max_bytes: int = _DEFAULTS.data.max_bytes,
        cleaning: dict = _DEFAULT_CLEANING,
        image_height: int = _DEFAULTS.images.height,
        image_width: int = _DEFAULTS.images.width,
        max_corrupt_fraction: float = _DEFAULTS.images.max_corrupt_fraction,
        max_image_pixels: int = _DEFAULTS.images.max_pixels,
        normalization: str = _DEFAULTS.preprocessing.normalization,
        max_one_hot: int = _DEFAULTS.preprocessing.max_one_hot,
        augmentation: dict = _DEFAULT_AUGMENTATION,
        export_root: str = "",
        model_name: str = _DEFAULTS.export.model_name,
        seed: int = _DEFAULTS.seed,
        val_fraction: float = _DEFAULTS.split.val_fraction,
        test_fraction: float = _DEFAULTS.split.test_fraction,
        tune_max_epochs: int = _DEFAULTS.tuning.max_epochs,
        tune_factor: int = _DEFAULTS.tuning.factor,
        tune_iterations: int = _DEFAULTS.tuning.hyperband_iterations,
        tune_patience: int = _DEFAULTS.tuning.patience,
        tune_objective: str = _DEFAULTS.tuning.objective,
        tune_max_failures: int = _DEFAULTS.tuning.max_consecutive_failed_trials,
        tuner_root: str = "",
        tune_backend: str = _DEFAULTS.tuning.backend,
        tune_workers: int = _DEFAULTS.tuning.workers,
        search_space: dict = _DEFAULT_SEARCH_SPACE,
        train_max_epochs: int = _DEFAULTS.training.max_epochs,
        train_patience: int = _DEFAULTS.training.patience,
        train_lr_schedule: str = _DEFAULTS.training.lr_schedule,
        train_lr_factor: float = _DEFAULTS.training.lr_factor,
        train_lr_patience: int = _DEFAULTS.training.lr_patience,
        gpu_count: int = 1,
        thresholds: dict = _DEFAULT_THRESHOLDS,
        force_export: bool = _DEFAULTS.evaluation.force_export,
        champion_margin: float = _DEFAULTS.evaluation.champion_margin,
        cv_folds: int = _DEFAULTS.evaluation.cv_folds,
        cv_max_rows: int = _DEFAULTS.evaluation.cv_max_rows,
    ) -> str:
        """Trains, tunes, evaluates and exports a Keras model for a tabular or image dataset.

        Args:
            data_uri: Local path, file:///path or gs://bucket/prefix (every object under it is a shard):
                CSV, Parquet, JSONL, or an image folder with one sub-folder per class;
                sample://penguins and sample://digits are shipped in the image.
            label: Column to predict (image folders: the column that holds the class).
            task: classification, regression or auto (inferred from the label).
            baseline_schema_uri: schema.json of an earlier run (or its artifact folder), local
                or gs://; drift findings go in the data report and fatal ones (a missing
                column, the label's type changed) fail the run. Empty: no drift check.
            allowed_roots: Local folders that local data (and file:// URIs) must lie in,
                symlinks resolved; empty allows any local path. gs:// and sample:// are not
                restricted by it.
            max_rows: Most rows ingest reads over all shards (image folders: files); more fails it.
            max_bytes: Most bytes of source data, checked from file sizes or the gs:// listing
                before anything is read or downloaded.
            cleaning: Cleaning rules as one JSON object: missing (drop, mean, median, mode,
                constant), fill_value, infinities, outliers (none, iqr, zscore), iqr_factor,
                zscore_threshold, drop_duplicates, drop_constant_columns, coerce_numeric_text,
                numeric_text_share, imbalance_ratio and per-column rules under columns.
            image_height: Height every image is resized to (image folders).
            image_width: Width every image is resized to (image folders).
            max_corrupt_fraction: Share of undecodable images that are skipped (and listed
                in the report); above it ingest fails.
            max_image_pixels: Most pixels (width x height) of one image, read from its header
                before decoding; a larger image fails ingest (decompression bombs included).
            normalization: zscore or minmax, fitted on the training split, applied in the model.
            max_one_hot: Categoricals with more values get an embedding instead of one-hot.
            augmentation: Training-only augmentation as one JSON object: flip, rotation, zoom,
                translation, contrast (images); gaussian_noise, oversample (tables).
            export_root: Local folder or gs://bucket/prefix under which
                <model_name>/<version>/ is published and <model_name>/CHAMPION names the
                current version; empty publishes into this run's outcome artifact (no champion).
            model_name: Folder name of the model under export_root.
            seed: Seed of the split, the tuner and training.
            val_fraction: Share of rows held out for validation.
            test_fraction: Share of rows held out for the test.
            tune_max_epochs: Hyperband max_epochs, the most epochs one model trains
                (9 with factor 3 schedules 23 trials and 75 epochs).
            tune_factor: Hyperband reduction factor between rounds.
            tune_iterations: Times the Hyperband schedule is repeated.
            tune_patience: Early-stopping patience inside a trial.
            tune_objective: val_loss or val_accuracy.
            tune_max_failures: Failed trials in a row (out of memory, NaN loss) that stop the search.
            tuner_root: Folder or gs://bucket/prefix for the tuner state and training backups,
                keyed by model name, data fingerprint and search space, so a retried or re-run
                step resumes; empty keeps them in the step's own outputs (no resume on retry).
            tune_backend: single (one process), local (a Keras Tuner chief and tune_workers
                processes in the tune pod, one GPU each) or kubernetes (a chief pod and an
                indexed Job of tune_workers GPU pods; needs a gs:// tuner_root).
            tune_workers: Worker processes or pods of the local and kubernetes backends.
            search_space: Hyperparameter ranges (see configs/default.yaml); a plain number fixes one.
            train_max_epochs: Upper bound on final-training epochs.
            train_patience: Early-stopping patience of final training.
            train_lr_schedule: plateau (cut the learning rate when validation loss stalls) or none.
            train_lr_factor: Learning-rate multiplier on a plateau.
            train_lr_patience: Epochs without improvement before the learning rate is cut.
            gpu_count: GPUs for each of the tune and train steps (when compiled for GPUs), and
                for each worker pod of the kubernetes tune backend.
            thresholds: Metric bounds a model must meet to be published, e.g.
                {"accuracy": 0.9} or {"rmse": 5.0}; empty means none.
            force_export: Publish even if not blessed; recorded in the model card.
            champion_margin: How much worse than the current champion a candidate may be
                in the main metric (accuracy for classification, rmse for regression), both
                scored on this run's test split; 0 means not worse.
            cv_folds: Folds of the k-fold cross-validation of the final configuration on
                small data; 0 turns it off.
            cv_max_rows: Cross-validate only below this many train + validation rows.
        """
        fingerprinted = steps.fingerprint(
            data_uri=data_uri, allowed_roots=allowed_roots, max_bytes=max_bytes
        ).set_display_name("fingerprint")
        fingerprinted.set_caching_options(False)  # must see today's data, also in scheduled runs
        ingested = steps.ingest(
            data_uri=data_uri, label=label, task=task, data_fingerprint=fingerprinted.output, cleaning=cleaning,
            image_height=image_height, image_width=image_width, max_corrupt_fraction=max_corrupt_fraction,
            max_image_pixels=max_image_pixels, baseline_schema_uri=baseline_schema_uri, allowed_roots=allowed_roots,
            max_rows=max_rows, max_bytes=max_bytes,
        ).set_display_name("ingest")
        cleaned = ingested.outputs["cleaned_data"]
        prepared = steps.preprocess(
            cleaned_data=cleaned, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
            normalization=normalization, max_one_hot=max_one_hot, augmentation=augmentation,
        ).set_display_name("preprocess")
        splits = {
            "train_data": prepared.outputs["train_data"],
            "validation_data": prepared.outputs["validation_data"],
            "preprocessing": prepared.outputs["preprocessing"],
        }
        tuned = steps.tune(
            **splits, search_space=search_space, max_epochs=tune_max_epochs, factor=tune_factor,
            hyperband_iterations=tune_iterations, patience=tune_patience, objective=tune_objective,
            max_failures=tune_max_failures, tuner_root=tuner_root, backend=tune_backend, workers=tune_workers,
            seed=seed, model_name=model_name, data_fingerprint=fingerprinted.output, gpu_count=gpu_count,
        ).set_display_name("tune")
        _place_on_gpu(tuned, gpu_count, placement)
        trained = steps.train(
            **splits, best_hyperparameters=tuned.outputs["best_hyperparameters"],
            search_space=search_space, max_epochs=train_max_epochs, patience=train_patience,
            lr_schedule=train_lr_schedule, lr_factor=train_lr_factor, lr_patience=train_lr_patience, seed=seed,
            tuner_root=tuner_root, model_name=model_name,
        ).set_display_name("train")
        _place_on_gpu(trained, gpu_count, placement)
        evaluated = steps.evaluate(
            **splits, model=trained.outputs["model"], test_data=prepared.outputs["test_data"],
            best_hyperparameters=tuned.outputs["best_hyperparameters"], history=trained.outputs["history"],
            search_space=search_space, thresholds=thresholds, force_export=force_export,
            champion_margin=champion_margin, cv_folds=cv_folds, cv_max_rows=cv_max_rows,
            export_root=export_root, model_name=model_name, seed=seed,
        ).set_display_name("evaluate")
        report = evaluated.outputs["report"]
        with dsl.If(evaluated.outputs["Output"] == True, name="blessed"):  # noqa: E712 - a KFP condition
            exported = steps.export(
                model=trained.outputs["model"], preprocessing=prepared.outputs["preprocessing"],
                test_data=prepared.outputs["test_data"], evaluation=evaluated.outputs["evaluation"],
                blessing=evaluated.outputs["blessing"], best_hyperparameters=tuned.outputs["best_hyperparameters"],
                history=trained.outputs["history"], cleaned_data=cleaned, report=report,
                export_root=export_root, model_name=model_name,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ).set_display_name("export")
        with dsl.Else(name="not-blessed"):
            refused = steps.record_refusal(
                evaluation=evaluated.outputs["evaluation"], blessing=evaluated.outputs["blessing"], report=report,
            ).set_display_name("record refusal")
        for step in (fingerprinted, ingested, prepared, tuned, trained, evaluated, exported, refused):
            _least_privilege(step, security_context)
        # The outcome as JSON (a parameter: kfp.local resolves dsl.OneOf for parameters only).
        return dsl.OneOf(exported.outputs["Output"], refused.outputs["Output"])

    return tunepipe_pipeline


def compile_pipeline_file(
    output: str | Path, image: str | None = None, gpu_image: str | None = None,
    placement: GpuPlacement | None = None, security_context: bool = True,
) -> Path:
    """Compiles the pipeline (:func:`create_pipeline`, same arguments) into the YAML file ``output``.

    The one place the pipeline is compiled: ``tunepipe compile``, ``tunepipe upload`` and the
    golden test (through the CLI) all come here.
    """
    from kfp import compiler

    compiler.Compiler().compile(create_pipeline(image, gpu_image, placement, security_context), str(output))
    return Path(output)
