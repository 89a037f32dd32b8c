"""Typed, validated configuration for a tunepipe run.

A run is configured by one YAML file (see ``configs/default.yaml`` for every key with its
default) whose sections map onto the models below. Every value is also a top-level pipeline
parameter, so that it shows and can be changed in the Kubeflow UI: :func:`pipeline_arguments`
flattens a :class:`Config` into those parameters, and the components rebuild the section they
need from them, so that the validation rules live here alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunepipe.errors import ConfigError

Task = Literal["auto", "classification", "regression"]
Missing = Literal["drop", "mean", "median", "mode", "constant"]
Outliers = Literal["none", "iqr", "zscore"]
Flip = Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
Activation = Literal["relu", "tanh", "gelu", "elu", "selu", "swish"]
DEFAULT_ACTIVATIONS: tuple[Activation, ...] = ("relu", "tanh")
Optimizer = Literal["adam", "rmsprop", "sgd"]
# SGD is offered but not searched by default: with Hyperband's short first rounds it rarely
# catches up with the adaptive optimizers, so its trials would mostly be spent budget.
DEFAULT_OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "rmsprop")
TuneBackend = Literal["single", "local", "kubernetes"]
LrSchedule = Literal["plateau", "none"]


def _fixed_number(value: Any) -> Any:
    """A plain number in YAML or JSON (``units: 64``) means that value, fixed (min == max)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"min": value, "max": value}
    return value


class _Section(BaseModel):
    """Frozen and strict about unknown keys, so that a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where the data is and what to predict.

    Attributes:
        uri: A local file or folder, a ``gs://bucket/prefix`` (every object under the prefix is
            one shard of the dataset), or a shipped sample (``sample://penguins``,
            ``sample://digits``). Files: CSV, Parquet, JSONL; folders of shards; image folders
            with one sub-folder per class. ``None`` means ``sample://penguins``.
        label: Column to predict. Required whenever ``uri`` is set; for an image folder it
            names the column that holds the class (the sub-folder's name).
        task: ``classification``, ``regression`` or ``auto`` (default), which infers it from
            the label: text, boolean or few distinct integers mean classification.
        baseline_schema_uri: A schema written by an earlier ingest (its ``schema.json``, or the
            artifact folder holding it), local or ``gs://``. Empty (default): no drift check.
    """

    uri: str | None = None
    label: str | None = None
    task: Task = "auto"
    baseline_schema_uri: str = ""


class ColumnRule(_Section):
    """Cleaning rules for one column; a key left out follows the global setting.

    Attributes:
        missing: How missing values of this column are handled (see :class:`CleaningConfig`).
        fill_value: The value ``missing: constant`` fills in.
        outliers: ``none``, ``iqr`` or ``zscore`` clipping for this column.
        type: ``numeric`` or ``categorical`` forces the column's type; ``auto`` infers it.
        drop: Drop the column before anything else (an identifier, a leak of the label).
    """

    missing: Missing | None = None
    fill_value: float | str | None = None
    outliers: Outliers | None = None
    type: Literal["auto", "numeric", "categorical"] = "auto"
    drop: bool = False


class CleaningConfig(_Section):
    """What ingest does to the rows and columns it reads; every action is counted in the report.

    Defaults keep every row that has a label and change as little as possible: missing
    numeric values take the median (robust to outliers) and missing categorical values the
    most frequent value, since dropping rows loses data and means are pulled by outliers.

    Attributes:
        missing: ``median`` (default), ``mean``, ``mode``, ``constant`` or ``drop`` (the row).
            ``mean`` and ``median`` apply to numeric columns; categorical columns then take
            ``mode``.
        fill_value: Value of ``missing: constant`` (default 0; categorical columns take its text).
        infinities: ``missing`` (default: treated as missing values, then handled as above) or
            ``drop`` (the row).
        outliers: ``none`` (default: outliers may be real), ``iqr`` (clip to the quartiles
            ± ``iqr_factor`` × IQR) or ``zscore`` (clip to the mean ± ``zscore_threshold`` std).
        iqr_factor: Tukey's fence factor (default 1.5).
        zscore_threshold: Standard deviations kept by z-score clipping (default 3).
        drop_duplicates: Drop exact duplicate rows (default true), which would leak between splits.
        drop_constant_columns: Drop columns with a single value (default true): they carry no signal.
        coerce_numeric_text: Turn text columns whose cells mostly parse as numbers into numbers
            (default true); the cells that do not parse become missing and are counted.
        numeric_text_share: Share of non-missing cells that must parse (default 0.9).
        imbalance_ratio: Majority/minority class ratio from which the report flags imbalance
            (default 3).
        columns: Per-column rules (:class:`ColumnRule`) by column name.
    """

    missing: Missing = "median"
    fill_value: float | str = 0.0
    infinities: Literal["missing", "drop"] = "missing"
    outliers: Outliers = "none"
    iqr_factor: float = Field(1.5, gt=0.0)
    zscore_threshold: float = Field(3.0, gt=0.0)
    drop_duplicates: bool = True
    drop_constant_columns: bool = True
    coerce_numeric_text: bool = True
    numeric_text_share: float = Field(0.9, gt=0.0, le=1.0)
    imbalance_ratio: float = Field(3.0, ge=1.0)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)

    def rule(self, column: str) -> ColumnRule:
        """The column's own rule, or an empty one."""
        return self.columns.get(column, ColumnRule())


class ImageConfig(_Section):
    """How image folders are decoded.

    Attributes:
        height: Height every image is resized to, in pixels (default 32: small CNNs train in
            minutes on CPUs; raise it for detailed photos).
        width: Width every image is resized to (default 32).
        max_corrupt_fraction: Share of undecodable files tolerated (default 0.05): below it they
            are skipped and listed in the report, above it ingest fails.
    """

    height: int = Field(32, ge=8, le=1024)
    width: int = Field(32, ge=8, le=1024)
    max_corrupt_fraction: float = Field(0.05, ge=0.0, lt=1.0)


class PreprocessingConfig(_Section):
    """How features are encoded inside the model (statistics fitted on the training split).

    Attributes:
        normalization: ``zscore`` (default: (x - mean) / std) or ``minmax`` ((x - min) / (max - min)).
        max_one_hot: Categoricals with at most this many values are one-hot encoded (default 20);
            larger vocabularies get a learned embedding, which stays small.
    """

    normalization: Literal["zscore", "minmax"] = "zscore"
    max_one_hot: int = Field(20, ge=1)


class AugmentationConfig(_Section):
    """Augmentation, active in training only (the Keras layers are identities at inference).

    Image defaults are mild and label-preserving for most data; ``flip`` is off by default
    because mirrored digits and text change meaning (turn it on for natural photos). Tabular
    augmentation is off by default: it changes the data the model sees, so it is opt-in.

    Attributes:
        flip: ``none`` (default), ``horizontal``, ``vertical`` or ``horizontal_and_vertical``.
        rotation: Largest rotation as a fraction of a full turn (default 0.05, about 18°).
        zoom: Largest zoom in or out as a fraction of the size (default 0.1).
        translation: Largest shift as a fraction of height and width (default 0.1).
        contrast: Largest contrast change factor (default 0.1).
        gaussian_noise: Standard deviation of noise added to normalized numeric features
            (default 0: off).
        oversample: Resample minority classes of the training split up to the majority's
            count (default false).
    """

    flip: Flip = "none"
    rotation: float = Field(0.05, ge=0.0, le=0.5)
    zoom: float = Field(0.1, ge=0.0, lt=1.0)
    translation: float = Field(0.1, ge=0.0, lt=1.0)
    contrast: float = Field(0.1, ge=0.0, lt=1.0)
    gaussian_noise: float = Field(0.0, ge=0.0)
    oversample: bool = False


class SplitConfig(_Section):
    """Fractions of the cleaned rows held out; the rest is the training split.

    Defaults of 0.15 each leave 70% for training, enough for the shipped 344-row dataset
    while keeping a test split large enough to compare models.
    """

    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)


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
            search-space hash so a re-run resumes the same search: a local folder or
            ``gs://bucket/prefix``. ``None`` (the pipeline's default ``""``) keeps it inside
            the tune step's own output, which is not resumable across retries.
        backend: ``single`` (default: one process), ``local`` (a Keras Tuner chief and
            ``workers`` worker processes on this machine) or ``kubernetes`` (a chief pod and
            an indexed Job of ``workers`` GPU pods, created from the tune step).
        workers: Worker processes or pods of the distributed backends (default 2).
    """

    max_epochs: int = Field(9, ge=2)
    factor: int = Field(3, ge=2)
    hyperband_iterations: int = Field(1, ge=1)
    patience: int = Field(3, ge=1)
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"
    max_consecutive_failed_trials: int = Field(3, ge=1)
    tuner_root: str | None = None
    backend: TuneBackend = "single"
    workers: int = Field(2, ge=1, le=64)


class TrainingConfig(_Section):
    """Final training from the best hyperparameters.

    Attributes:
        max_epochs: Upper bound on epochs (default 100); early stopping ends most runs sooner.
        patience: Epochs without validation-loss improvement before stopping (default 10);
            the best epoch's weights are restored.
        lr_schedule: ``plateau`` (default) multiplies the learning rate by ``lr_factor`` after
            ``lr_patience`` epochs without validation-loss improvement, which usually finds a
            lower loss before early stopping ends the run; ``none`` keeps it constant.
        lr_factor: Learning-rate multiplier on a plateau (default 0.5).
        lr_patience: Epochs without improvement before the rate is cut (default 4: less than
            ``patience``, so the lower rate gets a chance before training stops).
    """

    max_epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)
    lr_schedule: LrSchedule = "plateau"
    lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    lr_patience: int = Field(4, ge=1)


class EvaluationConfig(_Section):
    """Evaluation and the blessing decision: which models may be published.

    Attributes:
        thresholds: Metric name to bound, checked on the test split; higher-is-better metrics
            (accuracy, precision, recall, f1 and their *_weighted forms, roc_auc, r2) must reach
            the bound, lower-is-better ones (mae, rmse, mape, log_loss) must not exceed it.
            Default: none.
        force_export: Publish even a model that is not blessed (default false); the override
            is recorded in the model card.
        champion_margin: How much worse than the current champion, in the main metric
            (accuracy for classification, rmse for regression, in its own units), a candidate
            may be and still be blessed. Default 0.0: at least as good. Both are scored on the
            same test split in the same step.
        cv_folds: Folds of the k-fold cross-validation of the final configuration on small
            data (default 5; 0 turns it off). It refits the model k times, so it is kept for
            small datasets, where a small test split alone is noisy.
        cv_max_rows: Cross-validate only when train + validation hold fewer rows than this
            (default 2000).
    """

    thresholds: dict[str, float] = Field(default_factory=dict)
    force_export: bool = False
    champion_margin: float = Field(0.0, ge=0.0)
    cv_folds: int = Field(5, ge=0, le=20)
    cv_max_rows: int = Field(2000, ge=0)

    @model_validator(mode="after")
    def _folds(self) -> EvaluationConfig:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2")
        return self


class ExportConfig(_Section):
    """Where the blessed model is published.

    Attributes:
        model_name: Folder name under the export root (default ``model``); letters, digits,
            ``-``, ``_`` and ``.`` only, so it is safe as a path and an object-name segment.
        export_root: Local folder or ``gs://bucket/prefix``. The CLI's default is
            ``<output>/models``; the pipeline's default, empty, publishes into the run's own
            ``outcome`` artifact, which works on any cluster (the artifact store keeps it) but
            numbers versions per run and has no champion to compare with.
    """

    model_name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    export_root: str | None = None


class Config(_Section):
    """A whole run's configuration; every field has a documented default."""

    seed: int = Field(42, ge=0)
    data: DataConfig = DataConfig()
    cleaning: CleaningConfig = CleaningConfig()
    images: ImageConfig = ImageConfig()
    split: SplitConfig = SplitConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    tuning: TuningConfig = TuningConfig()
    search_space: SearchSpace = SearchSpace()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _label_with_uri(self) -> Config:
        if self.data.uri and not self.data.label:
            raise ValueError("data.label is required when data.uri is set")
        return self


def _describe(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"  {where}: {item['msg']} (got {item.get('input')!r})")
    return f"invalid configuration in {source}:\n" + "\n".join(problems)


def validate_section(model: type[_Section], values: dict[str, Any], source: str) -> Any:
    """Builds one configuration model, turning validation errors into :class:`ConfigError`.

    Args:
        model: The section class, e.g. :class:`SearchSpace`.
        values: Its raw values (from YAML or pipeline parameters).
        source: What to name in the error message (a file, or ``pipeline parameters``).
    """
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Reads a YAML configuration file (safe loader) and applies overrides.

    Args:
        path: YAML file; ``None`` means all defaults.
        overrides: Nested values that win over the file, e.g. ``{"data": {"label": "y"}}``;
            ``None`` values are ignored so CLI options that were not given change nothing.

    Raises:
        ConfigError: The file is missing, is not YAML, or holds an invalid value.
    """
    raw: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"configuration file {path} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
        raw = loaded or {}
    for section, values in (overrides or {}).items():
        existing = raw.get(section)
        if isinstance(values, dict):
            if existing is None or isinstance(existing, dict):  # else validation names the bad section
                kept = {key: value for key, value in values.items() if value is not None}
                raw[section] = {**(existing or {}), **kept}
        elif values is not None:
            raw[section] = values
    config: Config = validate_section(Config, raw, source)
    return config


def pipeline_arguments(config: Config) -> dict[str, Any]:
    """Flattens a configuration into the pipeline's top-level parameters.

    The names here are the pipeline function's parameter names; ``None`` values are left out
    so the pipeline's own defaults apply.
    """
    arguments: dict[str, Any] = {
        "data_uri": config.data.uri,
        "label": config.data.label,
        "task": config.data.task,
        "baseline_schema_uri": config.data.baseline_schema_uri,
        "cleaning": config.cleaning.model_dump(exclude_none=True),
        "image_height": config.images.height,
        "image_width": config.images.width,
        "max_corrupt_fraction": config.images.max_corrupt_fraction,
        "normalization": config.preprocessing.normalization,
        "max_one_hot": config.preprocessing.max_one_hot,
        "augmentation": config.augmentation.model_dump(),
        "seed": config.seed,
        "val_fraction": config.split.val_fraction,
        "test_fraction": config.split.test_fraction,
        "tune_max_epochs": config.tuning.max_epochs,
        "tune_factor": config.tuning.factor,
        "tune_iterations": config.tuning.hyperband_iterations,
        "tune_patience": config.tuning.patience,
        "tune_objective": config.tuning.objective,
        "tune_max_failures": config.tuning.max_consecutive_failed_trials,
        "tuner_root": config.tuning.tuner_root,
        "tune_backend": config.tuning.backend,
        "tune_workers": config.tuning.workers,
        "search_space": config.search_space.model_dump(exclude_none=True),
        "train_max_epochs": config.training.max_epochs,
        "train_patience": config.training.patience,
        "train_lr_schedule": config.training.lr_schedule,
        "train_lr_factor": config.training.lr_factor,
        "train_lr_patience": config.training.lr_patience,
        "thresholds": dict(config.evaluation.thresholds),
        "force_export": config.evaluation.force_export,
        "champion_margin": config.evaluation.champion_margin,
        "cv_folds": config.evaluation.cv_folds,
        "cv_max_rows": config.evaluation.cv_max_rows,
        "model_name": config.export.model_name,
        "export_root": config.export.export_root,
    }
    return {name: value for name, value in arguments.items() if value is not None}
