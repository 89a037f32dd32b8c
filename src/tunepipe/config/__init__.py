"""Typed, validated configuration for a tunepipe run.

A run is configured by one YAML file (see ``configs/default.yaml`` for every key with its
default) whose sections map onto the models below. Every value is also a top-level pipeline
parameter, so that it shows and can be changed in the Kubeflow UI: :func:`pipeline_arguments`
flattens a :class:`Config` into those parameters, and the components rebuild the section they
need from them, so that the validation rules live here alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from tunepipe.config.base import _Section
from tunepipe.config.data import (
    AugmentationConfig,
    CleaningConfig,
    ColumnRule,
    DataConfig,
    ImageConfig,
    InputLimits,
    PreprocessingConfig,
    SplitConfig,
)
from tunepipe.config.training import (
    EvaluationConfig,
    ExportConfig,
    FloatRange,
    IntRange,
    SearchSpace,
    TrainingConfig,
    TuningConfig,
)
from tunepipe.datasets import SAMPLE_LABELS, SAMPLE_SCHEME
from tunepipe.errors import ConfigError
from tunepipe.storage.uris import check_location

__all__ = [
    "AugmentationConfig", "CleaningConfig", "ColumnRule", "Config", "DataConfig", "EvaluationConfig", "ExportConfig",
    "FloatRange", "ImageConfig", "InputLimits", "IntRange", "PreprocessingConfig", "SearchSpace", "SplitConfig",
    "TrainingConfig", "TuningConfig", "load_config", "pipeline_arguments", "validate_section",
]


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

    @model_validator(mode="before")
    @classmethod
    def _sample_label(cls, raw: Any) -> Any:
        """A shipped sample (``sample://digits``) knows its label column."""
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, dict) or data.get("label"):
            return raw
        uri = data.get("uri")
        label = SAMPLE_LABELS.get(uri.removeprefix(SAMPLE_SCHEME)) if isinstance(uri, str) and uri.startswith(
            SAMPLE_SCHEME) else None
        return {**raw, "data": {**data, "label": label}} if label else raw

    @model_validator(mode="after")
    def _label_with_uri(self) -> Config:  # runs after _sample_label, which names the samples' labels
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


# A configuration file is a few kilobytes; a larger one is not a configuration (a YAML bomb).
MAX_CONFIG_BYTES = 1024 * 1024


def _read_yaml(path: str) -> dict[str, Any]:
    """The mapping in a YAML file, read with the safe loader (no Python objects, no tags that run code)."""
    local = check_location(path, "configuration file ", ConfigError, samples=False, stores=False)
    try:
        if Path(local).stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"configuration file {path} is larger than {MAX_CONFIG_BYTES:,} bytes")
        text = Path(local).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {path} is not UTF-8 text") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"configuration file {path} is not valid YAML: {error}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    return loaded or {}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Reads a YAML configuration file (safe loader) and applies overrides.

    Args:
        path: YAML file; ``None`` means all defaults.
        overrides: Nested values that win over the file, e.g. ``{"data": {"label": "y"}}``;
            ``None`` values are ignored so CLI options that were not given change nothing.

    Raises:
        ConfigError: The path is refused (:func:`tunepipe.storage.uris.check_location`: ``file://`` and
            local paths only, no ``..``), the file is missing, too large or not YAML, or it
            holds an unknown key or an invalid value.
    """
    source = str(path) if path else "defaults"
    raw = _read_yaml(str(path)) if path is not None else {}
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
        "allowed_roots": list(config.data.allowed_roots),
        "max_rows": config.data.max_rows,
        "max_bytes": config.data.max_bytes,
        "max_image_pixels": config.images.max_pixels,
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
