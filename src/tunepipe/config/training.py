"""Configuration sections about the model: search space, tuning, training, evaluation, export.

Part of :mod:`tunepipe.config`, which re-exports every class; import them from there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from tunepipe.config.base import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_OPTIMIZERS,
    Activation,
    LrSchedule,
    Optimizer,
    _fixed_number,
    _Section,
    storage_root,
)
from tunepipe.config.placement import Placement, moved_to_placement

# tuning.sample_rows' default: chosen by bench/tune_sample.py (docs/tuning.md, "Tuning on a sample").
TUNING_SAMPLE_ROWS = 20_000
# A folder steps write to, checked where the configuration is read (see storage_root).
StorageRoot = Annotated[str | None, AfterValidator(storage_root)]


class IntRange(_Section):
    """An integer hyperparameter from ``min`` to ``max`` in steps of ``step`` (min == max fixes it)."""

    min: int
    max: int
    step: int = Field(1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _fixed(cls, value: Any) -> Any:
        return _fixed_number(value)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class FloatRange(_Section):
    """A float hyperparameter; ``sampling: log`` suits scales such as learning rates."""

    min: float
    max: float
    step: float | None = Field(None, gt=0.0)
    sampling: Literal["linear", "log"] = "linear"

    @model_validator(mode="before")
    @classmethod
    def _fixed(cls, value: Any) -> Any:
        return _fixed_number(value)

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if self.sampling == "log" and self.min <= 0:
            raise ValueError(f"log sampling needs min > 0, got {self.min}")
        return self


class SearchSpace(_Section):
    """The hyperparameters Hyperband searches, defined once for tuning and final training.

    Defaults span small to medium multilayer perceptrons: 1-3 hidden layers of 16-128 units,
    dropout up to 0.5, L2 from 1e-6 to 1e-2 and learning rate from 1e-4 to 1e-2 (both on a
    log scale, since their effect is multiplicative), Adam or RMSprop (SGD on request), and
    L1 from 0 (off) to 1e-4 in steps of 2.5e-5: a linear grid, so that "no L1" is one of the
    values tried rather than an unreachable end of a log range. Any range may be written as a
    plain number to fix it (``units: 64``).

    Image data uses a small CNN instead, chosen automatically: 1-3 convolution blocks (each
    doubling the filters, 16-64 in the first), kernel size 3 or 5, a dense layer of 32-128
    units, with the same dropout, learning rate and batch size.
    """

    hidden_layers: IntRange = IntRange(min=1, max=3)
    units: IntRange = IntRange(min=16, max=128, step=16)
    activation: list[Activation] = Field(default_factory=lambda: list(DEFAULT_ACTIVATIONS), min_length=1)
    dropout: FloatRange = FloatRange(min=0.0, max=0.5, step=0.1)
    l1: FloatRange = FloatRange(min=0.0, max=1e-4, step=2.5e-5)
    l2: FloatRange = FloatRange(min=1e-6, max=1e-2, sampling="log")
    optimizer: list[Optimizer] = Field(default_factory=lambda: list(DEFAULT_OPTIMIZERS), min_length=1)
    learning_rate: FloatRange = FloatRange(min=1e-4, max=1e-2, sampling="log")
    batch_size: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    conv_blocks: IntRange = IntRange(min=1, max=3)
    filters: IntRange = IntRange(min=16, max=64, step=16)
    kernel_size: list[int] = Field(default_factory=lambda: [3, 5], min_length=1)
    dense_units: IntRange = IntRange(min=32, max=128, step=32)

    @model_validator(mode="after")
    def _positive_batches(self) -> SearchSpace:
        if any(size < 1 for size in self.batch_size):
            raise ValueError(f"batch sizes must be positive, got {self.batch_size}")
        if self.dropout.min < 0 or self.dropout.max >= 1:
            raise ValueError("dropout must lie in [0, 1)")
        if any(size < 1 or size % 2 == 0 for size in self.kernel_size):
            raise ValueError(f"kernel sizes must be odd and positive, got {self.kernel_size}")
        if self.conv_blocks.min < 1 or self.filters.min < 1 or self.dense_units.min < 1:
            raise ValueError("conv_blocks, filters and dense_units must be at least 1")
        if self.l1.min < 0 or self.l2.min < 0:
            raise ValueError(f"l1 and l2 must not be negative, got l1 {self.l1.min}, l2 {self.l2.min}")
        return self


class TuningConfig(_Section):
    """Keras Tuner Hyperband budget.

    Attributes:
        max_epochs: Most epochs any one model trains (default 9: 23 trials and about 75 epochs
            in all with factor 3, a few minutes on two CPU cores for the shipped dataset).
        factor: Reduction factor between Hyperband rounds (default 3, Hyperband's own).
        hyperband_iterations: Times the whole Hyperband schedule is repeated (default 1).
        patience: EarlyStopping patience inside a trial, in epochs (default 3).
        objective: Validation metric to minimise or maximise (default ``val_loss``, defined
            for both classification and regression).
        max_consecutive_failed_trials: Failed trials in a row (out of memory, NaN loss) that
            stop the search with an error naming the cause (default 3, Keras Tuner's own).
        tuner_root: Where the tuner's state lives, keyed by model name, data fingerprint and
            search-space hash so a re-run resumes the same search: a local folder,
            ``gs://bucket/prefix`` or ``s3://bucket/prefix``. ``None`` (the pipeline's default ``""``):
            ``tuner-state`` under a ``gs://`` or ``s3://`` pipeline root on Kubeflow Pipelines
            (:mod:`tunepipe.storage.state_root`), else inside the tune step's own output, which is
            not resumable across retries.
        placement: Where the trials run (:class:`~tunepipe.config.placement.Placement`). ``auto``
            (default): one worker process per GPU when the step sees two or more; on CPU 2 worker
            processes for a schedule of 20 or more trials when the step has 2 CPUs and memory for
            3 TensorFlow processes, which measured faster; else the step's process
            (:func:`tunepipe.execution.placement.resolve_tuning`). ``step``: the tuner in the tune
            step's process. ``node``: a Keras Tuner chief and ``workers`` worker processes on the
            step's node, one GPU each (0: one per GPU, else 2). ``cluster``: a chief pod and an
            indexed Job of ``workers`` GPU pods created by the tune step (0: 2; needs a ``gs://``
            ``tuner_root``). Replaces ``backend`` and ``workers``, still read for one release.
        prefer: Which trial's hyperparameters the final training uses. ``best`` (default): the
            best score. ``smallest`` (fewest parameters) or ``fastest`` (lowest latency per row
            at batch 1): among the trials within one standard error of the best score on the
            validation rows, for a model that costs less to serve at no measurable loss
            (:mod:`tunepipe.modelling.preference`). Every trial's size and latency are measured
            and reported either way.
        sample_rows: Hyperband searches on at most this many rows of the training split (and as
            many of the validation split): a seeded sample stratified by class, or by decile of a
            regression label (:mod:`tunepipe.data.sampling`). The final training always uses
            every row. 0 searches on every row. Default :data:`TUNING_SAMPLE_ROWS`, chosen by the
            measurement in docs/tuning.md ("Tuning on a sample").
    """

    max_epochs: int = Field(9, ge=2)
    factor: int = Field(3, ge=2)
    hyperband_iterations: int = Field(1, ge=1)
    patience: int = Field(3, ge=1)
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"
    max_consecutive_failed_trials: int = Field(3, ge=1)
    tuner_root: StorageRoot = None
    placement: Placement = Placement()
    prefer: Literal["best", "smallest", "fastest"] = "best"
    sample_rows: int = Field(TUNING_SAMPLE_ROWS, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, raw: Any) -> Any:
        return moved_to_placement("tuning", raw)


class TrainingConfig(_Section):
    """Final training from the best hyperparameters.

    Attributes:
        max_epochs: Upper bound on epochs (default 100); early stopping ends most runs sooner.
        patience: Epochs without validation-loss improvement before stopping (default 10);
            the best epoch's weights are restored.
        min_delta: Smallest fall in validation loss that counts as an improvement for early
            stopping (default 0.0, Keras' own: any fall counts); raise it to stop sooner on a
            loss that only creeps down.
        lr_schedule: ``plateau`` (default) multiplies the learning rate by ``lr_factor`` after
            ``lr_patience`` epochs without validation-loss improvement, which usually finds a
            lower loss before early stopping ends the run; ``none`` keeps it constant.
        lr_factor: Learning-rate multiplier on a plateau (default 0.5).
        lr_patience: Epochs without improvement before the rate is cut (default 4: less than
            ``patience``, so the lower rate gets a chance before training stops).
        small_data_model: The model exported when the data is small enough to cross-validate
            (``evaluation.cv_folds`` >= 2 and train + validation under ``evaluation.cv_max_rows``
            rows). ``bagged`` (default): the average of the k cross-validation models, which
            together learn from every train + validation row at no extra training; ``single``:
            the early-stopped model trained on the training split; ``refit``: one more model
            trained on train + validation for the best epoch's count. Chosen from the quality
            benchmark (docs/tuning.md). Larger data always keeps the single model.
        placement: Where final training runs (:class:`~tunepipe.config.placement.Placement`).
            ``auto`` (default) and ``node`` with 0 workers: every GPU the train step sees when it
            sees two or more, else one device. ``step``: one device. ``node``: ``workers`` devices
            at once, synchronously (one model copy each, ``tf.distribute.MirroredStrategy``;
            :mod:`tunepipe.execution.replicas`): the first N GPUs, or on a machine without GPUs N
            logical CPU devices (a rehearsal of the GPU path, slower than one device).
            ``cluster``: a Kubeflow Trainer ``TrainJob`` of ``workers`` (2 or more) pods, one JAX
            process each, trained in sync with Keras' ``DataParallel``
            (:mod:`tunepipe.execution.k8s.training`); needs the pipeline on Kubernetes with
            Kubeflow Trainer installed, an image with JAX (``tunepipe[multiworker]``) and a
            ``gs://`` or ``s3://`` ``tuning.tuner_root``. With N devices or pods each trains on
            the tuned batch size: the global batch is ``batch_size x N``, the learning rate is
            scaled by ``sqrt(N)`` (Adam, RMSprop) or ``N`` (SGD). Replaces ``replicas`` and
            ``workers``, still read for one release.
        decision_metric: For two classes of which the report flags one as rare: the metric the
            decision threshold is chosen for on the validation rows (:mod:`tunepipe.modelling.imbalance`).
            ``f1`` (default: of the rare class, which accuracy would trade away), ``balanced_accuracy``,
            ``accuracy``, or ``argmax`` (no threshold: the most probable class).
    """

    max_epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)
    min_delta: float = Field(0.0, ge=0.0)
    lr_schedule: LrSchedule = "plateau"
    lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    lr_patience: int = Field(4, ge=1)
    small_data_model: Literal["bagged", "single", "refit"] = "bagged"
    placement: Placement = Placement()
    decision_metric: Literal["f1", "balanced_accuracy", "accuracy", "argmax"] = "f1"

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, raw: Any) -> Any:
        return moved_to_placement("training", raw)

    @model_validator(mode="after")
    def _cluster_size(self) -> TrainingConfig:
        if self.placement.where == "cluster" and self.placement.workers < 2:
            raise ValueError(f"placement: where cluster needs workers 2 or more (the TrainJob's pods), got "
                             f"{self.placement.workers}; one worker is the train step itself (where step)")
        return self


class EvaluationConfig(_Section):
    """Evaluation and the blessing decision: which models may be published.

    Attributes:
        thresholds: Metric name to bound, checked on the test split; higher-is-better metrics
            (accuracy, precision, recall, f1 and their *_weighted forms, roc_auc, r2) must reach
            the bound, lower-is-better ones (mae, rmse, mape, log_loss) must not exceed it.
            Default: none.
        force_export: Publish even a model that is not blessed (default false); the override
            is recorded in the model card.
        champion_rule: How the candidate must compare with the current champion, judged by
            the 95 % paired-bootstrap interval of their difference in the main metric (accuracy
            for classification, rmse for regression) on the same test rows. ``not_worse``
            (default): refused only when worse with 95 % confidence by more than
            ``champion_margin``, so noise alone never refuses an equal challenger; ``better``:
            published only when better with 95 % confidence (for teams that pay for every
            rollout; an equal challenger is refused).
        champion_margin: How much worse than the current champion, in the main metric's own
            units, rule ``not_worse`` tolerates before the interval counts against the
            candidate. Default 0.0.
        cv_folds: Folds of the k-fold cross-validation of the final configuration on small
            data (default 5; 0 turns it off), run by the train step after the final training:
            its k models make the bagged model (``training.small_data_model``) and its scores
            the report's cross-validation figures. It fits the model k times, so it is kept for
            small datasets, where a small test split alone is noisy.
        cv_max_rows: Cross-validate only when train + validation hold fewer rows than this
            (default 2000).
        cv_placement: Where the folds run (:class:`~tunepipe.config.placement.Placement`).
            ``auto`` (default) and ``node`` with 0 workers: one process per GPU when the train
            step sees two or more, else the step's own process, which measured fastest on CPU.
            ``step``: the step's own process. ``node``: ``workers`` processes at once, given the
            GPUs in turn. ``cluster`` is refused: the folds run in the train step's pod.
            Replaces ``cv_workers``, still read for one release.
    """

    thresholds: dict[str, float] = Field(default_factory=dict)
    force_export: bool = False
    champion_rule: Literal["not_worse", "better"] = "not_worse"
    champion_margin: float = Field(0.0, ge=0.0)
    cv_folds: int = Field(5, ge=0, le=20)
    cv_max_rows: int = Field(2000, ge=0)
    cv_placement: Placement = Placement()

    def cross_validation(self) -> dict[str, Any]:
        """The settings the train step cross-validates with, apart from the rest of the section so
        that changing a threshold, the champion rule or force_export keeps train's cache."""
        return {"cv_folds": self.cv_folds, "cv_max_rows": self.cv_max_rows,
                "cv_placement": self.cv_placement.model_dump()}

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, raw: Any) -> Any:
        return moved_to_placement("evaluation", raw)

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, thresholds: dict[str, float]) -> dict[str, float]:
        """A misspelt metric is refused where the configuration is read, not after training.

        The task may still be ``auto`` here, so a metric either task reports passes; the evaluate
        step checks it against the task ingest settled.
        """
        from tunepipe.config.thresholds import validate_thresholds
        from tunepipe.errors import TunepipeError

        try:
            validate_thresholds(thresholds, "auto")
        except TunepipeError as refused:
            raise ValueError(str(refused)) from None
        return thresholds

    @model_validator(mode="after")
    def _folds(self) -> EvaluationConfig:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2")
        if self.cv_placement.where == "cluster":
            raise ValueError("cv_placement: where cluster is not offered for cross-validation: the folds run in "
                             "the train step's pod (where step or node)")
        return self


class ExportConfig(_Section):
    """Where the blessed model is published.

    Attributes:
        model_name: Folder name under the export root (default ``model``); letters, digits,
            ``-``, ``_`` and ``.`` only, so it is safe as a path and an object-name segment.
        export_root: Local folder, ``gs://bucket/prefix`` or ``s3://bucket/prefix``. The CLI's default is
            ``<output>/models``; the pipeline's default, empty, publishes into the run's own
            ``outcome`` artifact, which works on any cluster (the artifact store keeps it) but
            numbers versions per run and has no champion to compare with.
    """

    model_name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    export_root: StorageRoot = None
