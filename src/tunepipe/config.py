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
Activation = Literal["relu", "tanh", "gelu", "elu", "selu", "swish"]
DEFAULT_ACTIVATIONS: tuple[Activation, ...] = ("relu", "tanh")


class _Section(BaseModel):
    """Frozen and strict about unknown keys, so that a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where the data is and what to predict.

    Attributes:
        uri: CSV or Parquet file (a local path), or ``sample://penguins``, the dataset shipped
            in the package. ``None`` here means that sample, with label ``species``.
        label: Column to predict. Required whenever ``uri`` is set.
        task: ``classification``, ``regression`` or ``auto`` (default), which infers it from
            the label: text, boolean or few distinct integers mean classification.
    """

    uri: str | None = None
    label: str | None = None
    task: Task = "auto"


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
    log scale, since their effect is multiplicative).
    """

    hidden_layers: IntRange = IntRange(min=1, max=3)
    units: IntRange = IntRange(min=16, max=128, step=16)
    activation: list[Activation] = Field(default_factory=lambda: list(DEFAULT_ACTIVATIONS), min_length=1)
    dropout: FloatRange = FloatRange(min=0.0, max=0.5, step=0.1)
    l2: FloatRange = FloatRange(min=1e-6, max=1e-2, sampling="log")
    learning_rate: FloatRange = FloatRange(min=1e-4, max=1e-2, sampling="log")
    batch_size: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)

    @model_validator(mode="after")
    def _positive_batches(self) -> SearchSpace:
        if any(size < 1 for size in self.batch_size):
            raise ValueError(f"batch sizes must be positive, got {self.batch_size}")
        if self.dropout.min < 0 or self.dropout.max >= 1:
            raise ValueError("dropout must lie in [0, 1)")
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
    """

    max_epochs: int = Field(9, ge=2)
    factor: int = Field(3, ge=2)
    hyperband_iterations: int = Field(1, ge=1)
    patience: int = Field(3, ge=1)
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"


class TrainingConfig(_Section):
    """Final training from the best hyperparameters.

    Attributes:
        max_epochs: Upper bound on epochs (default 100); early stopping ends most runs sooner.
        patience: Epochs without validation-loss improvement before stopping (default 10);
            the best epoch's weights are restored.
    """

    max_epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)


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
    split: SplitConfig = SplitConfig()
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
        "seed": config.seed,
        "val_fraction": config.split.val_fraction,
        "test_fraction": config.split.test_fraction,
        "tune_max_epochs": config.tuning.max_epochs,
        "tune_factor": config.tuning.factor,
        "tune_iterations": config.tuning.hyperband_iterations,
        "tune_patience": config.tuning.patience,
        "tune_objective": config.tuning.objective,
        "search_space": config.search_space.model_dump(exclude_none=True),
        "train_max_epochs": config.training.max_epochs,
        "train_patience": config.training.patience,
        "thresholds": dict(config.evaluation.thresholds),
        "force_export": config.evaluation.force_export,
        "champion_margin": config.evaluation.champion_margin,
        "cv_folds": config.evaluation.cv_folds,
        "cv_max_rows": config.evaluation.cv_max_rows,
        "model_name": config.export.model_name,
        "export_root": config.export.export_root,
    }
    return {name: value for name, value in arguments.items() if value is not None}
