"""The train step over folders: the final model from the best hyperparameters, resumable.

Called by the train component. Rebuilds the tuned model and has the runner
:func:`~tunepipe.execution.training.training_runner` gives it (one device, every device of the
node, or a ``TrainJob``) train it with a per-epoch backup (:func:`training_backup_location`)
that a retried step resumes from; on small data
cross-validates the configuration and (by default) exports the average of the fold models
(:mod:`tunepipe.modelling.ensemble`); writes ``model.keras``, the history and the
cross-validation's scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import EvaluationConfig, SearchSpace, TrainingConfig
from tunepipe.contract import StepResult
from tunepipe.data.features import PreprocessingSpec, class_ids_with_unseen, model_inputs
from tunepipe.data.preprocess import read_spec
from tunepipe.data.split import Split, fit_inputs
from tunepipe.evaluation.crossval import cross_validate_with_models, cross_validation_frame
from tunepipe.evaluation.evaluate import outputs_and_labels
from tunepipe.execution.devices import use_mixed_precision_on_gpu
from tunepipe.execution.folds import fold_runner
from tunepipe.execution.replicas import describe_replicas
from tunepipe.execution.training import TrainingWork, training_runner
from tunepipe.modelling import ensemble
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.imbalance import choose_decision, class_weights
from tunepipe.modelling.model import in_label_units
from tunepipe.modelling.preference import measure_cost
from tunepipe.modelling.problem import problem_hash
from tunepipe.modelling.scaling import scaled_for_replicas
from tunepipe.modelling.train import TrainingResult, save_training
from tunepipe.modelling.tune import load_hyperparameters
from tunepipe.step_folders import one_run_at_a_time, output_folder
from tunepipe.storage import atomic
from tunepipe.storage.tuner_state import TunerStateSync, state_sync_for

log = logging.getLogger(__name__)


def training_backup_location(
    tuner_root: str, model_name: str, hyperparameters: dict[str, Any], training: TrainingConfig, seed: int,
    default: PathLike, problem: str = "",
) -> str:
    """Where final training keeps its per-epoch backup.

    ``<tuner_root>/<model_name>/train-<hash>``, the hash over the best hyperparameters, the
    training section, the seed and ``problem`` (the preprocessing specification's hash, which
    changes with the data): a retried step (same inputs) finds its backup, any other training
    starts afresh. Without a tuner root: ``default`` (inside the step's own output).
    """
    if not tuner_root:
        return str(default)
    canonical = json.dumps(
        {"hp": hyperparameters, "training": training.model_dump(), "seed": seed, "problem": problem}, sort_keys=True
    )
    return f"{tuner_root.rstrip('/')}/{model_name}/train-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


class _MirrorAfterEpoch(keras.callbacks.Callback):
    def __init__(self, sync: TunerStateSync, folder: Path) -> None:
        super().__init__()
        self.sync, self.folder = sync, folder

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.sync.upload_changed(self.folder)


@dataclasses.dataclass(frozen=True)
class SmallData:
    """What the train step needs to cross-validate small data and pick the exported model."""

    train_dir: PathLike
    validation_dir: PathLike
    spec: PreprocessingSpec
    search_space: SearchSpace
    hyperparameters: keras_tuner.HyperParameters
    settings: EvaluationConfig  # cv_folds, cv_max_rows, cv_placement
    kind: str  # training.small_data_model
    seed: int


def _exported_model(
    small: SmallData, result: TrainingResult, rows: int,
) -> tuple[keras.Model, dict[str, Any] | None, dict[str, Any]]:
    """The model to export, the cross-validation summary (None on larger data) and its description.

    On small data (``cv_folds`` >= 2 and fewer than ``cv_max_rows`` train + validation rows) the
    configuration is cross-validated for the best epoch's count, and ``small.kind`` picks the
    model: the folds' average (``bagged``), the early-stopped one (``single``) or one more fit on
    train + validation (``refit``).
    """
    settings, epochs = small.settings, result.best_epoch
    if settings.cv_folds < 2 or rows >= settings.cv_max_rows:
        log.info("train: single model, no cross-validation (%d train + validation rows, cv_folds %d, "
                 "cv_max_rows %d)", rows, settings.cv_folds, settings.cv_max_rows)
        return result.model, None, ensemble.describe(ensemble.SINGLE, 1, len(result.history["loss"]), rows)
    frame = cross_validation_frame(Split.open(small.train_dir).frame(), Split.open(small.validation_dir).frame(),
                                   small.spec)
    hypermodel = hypermodel_for(small.spec, small.search_space)  # its own: no backup mirroring in the folds
    summary, weights = cross_validate_with_models(
        hypermodel, small.hyperparameters, frame, small.spec, settings.cv_folds, epochs, small.seed,
        fold_runner(settings.cv_placement))
    if small.kind == ensemble.BAGGED:
        log.info("train: exported model: the average of the %d cross-validation models", len(weights))
        members = ensemble.members_from_weights(hypermodel, small.hyperparameters, weights)
        return ensemble.average(members), summary, ensemble.describe(small.kind, len(members), epochs, len(frame))
    if small.kind == ensemble.REFIT:
        log.info("train: exported model: refitted on %d train + validation rows for %d epochs", len(frame), epochs)
        model = ensemble.refit(hypermodel, small.hyperparameters, frame, small.spec, epochs, small.seed)
        return model, summary, ensemble.describe(small.kind, 1, epochs, len(frame))
    return result.model, summary, ensemble.describe(ensemble.SINGLE, 1, len(result.history["loss"]), rows)


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What train reads.

    Attributes:
        train_data, validation_data, preprocessing: The preprocess step's folders.
        best_hyperparameters: The tune step's folder of the chosen hyperparameters.
        training: The training section (its ``max_epochs`` UI parameter folded in).
        search_space: The search space the hyperparameters come from.
        cross_validation: The evaluation section's cv settings; None (default) cross-validates
            nothing and exports the early-stopped model.
        seed: Seeds training and the folds.
        tuner_root: Root of the per-epoch backup (:func:`training_backup_location`); empty
            (default): inside the history folder.
        model_name: Names the backup's folder under the root.
    """

    train_data: PathLike
    validation_data: PathLike
    preprocessing: PathLike
    best_hyperparameters: PathLike
    training: TrainingConfig
    search_space: SearchSpace
    seed: int
    cross_validation: EvaluationConfig | None = None
    tuner_root: str = ""
    model_name: str = "model"


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Folders for ``model.keras`` and for the history (with the cross-validation's scores)."""

    model: PathLike
    history: PathLike


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Trains the final model; writes ``model.keras``, the history and, on small data, the
    cross-validation's scores (:data:`artifacts.CROSS_VALIDATION_FILE`, beside the history).

    The per-epoch backup a killed run resumes from lives at :func:`training_backup_location`;
    on ``gs://`` it is kept in a local folder mirrored after every epoch. The folds are not
    resumable: a retried step refits them.

    Returns:
        Epochs trained, best epoch, the epoch resumed from, best validation loss and the model's
        kind as the model's metadata; the epochs on the history; the first three and the loss as metrics.
    """
    training, seed, spec_dir = inputs.training, inputs.seed, inputs.preprocessing
    runner = training_runner(training)  # first: splitting the CPU must precede TensorFlow's start
    replicas = runner.replicas  # one replica per device or worker process: the same batch and learning-rate rules
    log.info("train: precision policy %s", use_mixed_precision_on_gpu())
    spec = read_spec(spec_dir)
    hyperparameters = load_hyperparameters(Path(inputs.best_hyperparameters) / artifacts.BEST_HYPERPARAMETERS_FILE)
    scaled = scaled_for_replicas(hyperparameters, replicas.count)
    if replicas.count > 1:
        log.info("train: %d replicas (%s), global batch %d, learning rate %.3g (tuned: batch %d, %.3g)",
                 replicas.count, ", ".join(replicas.devices), scaled.get("batch_size"), scaled.get("learning_rate"),
                 hyperparameters.get("batch_size"), hyperparameters.get("learning_rate"))
    default = Path(outputs.history) / artifacts.BACKUP_KERAS_DIR
    location = training_backup_location(
        inputs.tuner_root, inputs.model_name, hyperparameters.get_config(), training, seed, default,
        problem_hash(spec_dir),
    )
    sync = state_sync_for(location)
    hypermodel = hypermodel_for(spec, inputs.search_space)
    with tempfile.TemporaryDirectory(prefix="tunepipe-backup-") as scratch, one_run_at_a_time(location, sync, "train"):
        backup = Path(scratch) if sync is not None else Path(location)
        if sync is not None:
            sync.download_all(backup)
            hypermodel.extra_callbacks = [_MirrorAfterEpoch(sync, backup)]
        log.info("train: per-epoch backup in %s", location)
        batch = int(scaled.get("batch_size"))
        data = fit_inputs(inputs.train_data, inputs.validation_data, spec, batch,
                          hypermodel.validation_batch_size(batch), seed)
        folders = {artifacts.TRAIN: inputs.train_data, artifacts.VALIDATION: inputs.validation_data,
                   artifacts.INPUTS_SPEC_DIR: spec_dir}
        result = runner.train(TrainingWork(hypermodel, scaled, data.train, data.validation, training, seed, backup,
                                           folders, inputs.best_hyperparameters, inputs.search_space, location))
    small = SmallData(inputs.train_data, inputs.validation_data, spec, inputs.search_space, hyperparameters,
                      inputs.cross_validation or EvaluationConfig(cv_folds=0), training.small_data_model, seed)
    model, summary, described = _exported_model(small, result, data.rows)
    model = in_label_units(model, spec)  # a log-scale label's network answers in the label's units
    if spec.label_transform != "none":
        described["label_transform"] = {"transform": spec.label_transform, "skewness": spec.label_skewness}
    described.update(_rare_class_handling(result.model, inputs.validation_data, spec, training.decision_metric))
    described["training_devices"] = describe_replicas(replicas, hyperparameters, scaled, result.replicas_in_sync)
    described["cost"] = measure_cost(model, data.sample)
    _save(outputs, dataclasses.replace(result, model=model), summary, described)
    return _result(result, described)


def _rare_class_handling(model: keras.Model, validation_dir: PathLike, spec: PreprocessingSpec,
                         metric: str) -> dict[str, Any]:
    """The class weights the fits used and the binary decision rule (:mod:`tunepipe.modelling.imbalance`),
    for the history and so the model card; empty for a balanced label or regression.

    The threshold is chosen on the validation rows' probabilities of the early-stopped model,
    which trained on the training split only (the folds of a bagged model saw those rows), and
    the exported model uses it.
    """
    weights = class_weights(spec)
    handling: dict[str, Any] = {"class_weights": dict(zip(spec.classes, weights, strict=True))} if weights else {}
    if not spec.is_classification or not spec.imbalanced or len(spec.classes) != 2 or metric == "argmax":
        return handling
    outputs, frame = outputs_and_labels(Split.open(validation_dir), spec.label, model,
                                        lambda chunk: model_inputs(chunk, spec))
    y_true, _ = class_ids_with_unseen(frame, spec.label, spec.classes)
    known = y_true < len(spec.classes)
    decision = choose_decision(y_true[known], outputs[known], spec.class_counts, spec.imbalanced, metric, spec.classes)
    if decision:
        log.info("train: %s predicted from a probability of %.4f (%s on validation %.4f, argmax %.4f)",
                 decision["positive_class"], decision["threshold"], metric, decision["validation_score"],
                 decision["validation_score_argmax"])
        handling["decision"] = decision
    return handling


def _save(outputs: Outputs, result: TrainingResult, summary: dict[str, Any] | None, described: dict[str, Any]) -> None:
    """Writes the model, the history and the cross-validation's scores (removing an earlier attempt's)."""
    history_folder = output_folder(outputs.history)
    cv_file = history_folder / artifacts.CROSS_VALIDATION_FILE
    if summary is not None:
        atomic.write_text(cv_file, json.dumps(summary, indent=2))
    else:
        cv_file.unlink(missing_ok=True)  # an earlier attempt's, in a reused folder
    save_training(result, output_folder(outputs.model) / artifacts.MODEL_FILE, history_folder / artifacts.HISTORY_FILE,
                  described)


def _result(result: TrainingResult, described: dict[str, Any]) -> StepResult:
    """The model's metadata, the history's epochs, and the metrics the Kubeflow UI compares runs on."""
    validation_losses = result.history.get("val_loss") or [float("nan")]
    summary = {
        artifacts.META_EPOCHS: len(result.history["loss"]), artifacts.META_BEST_EPOCH: result.best_epoch,
        artifacts.META_RESUMED_FROM_EPOCH: result.resumed_from_epoch,
        artifacts.META_BEST_VAL_LOSS: float(min(validation_losses)), artifacts.META_MODEL_KIND: described["kind"],
    }
    logged = {key: summary[key] for key in (artifacts.META_EPOCHS, artifacts.META_BEST_EPOCH,
                                            artifacts.META_BEST_VAL_LOSS)}
    return StepResult(metadata={"model": summary, "history": {artifacts.META_EPOCHS: summary[artifacts.META_EPOCHS]}},
                      metrics={"metrics": logged})
