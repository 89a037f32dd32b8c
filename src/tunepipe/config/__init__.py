"""Typed, validated configuration for a tunepipe run.

A run is configured by one YAML file (see ``configs/default.yaml`` for every key with its
default) whose sections map onto the models below. The same sections cross the pipeline
boundary whole, one ``dict`` parameter each, with a few values promoted to named parameters for
the Kubeflow UI: :mod:`tunepipe.config.parameters` derives both directions from the models, so
that the validation rules and the descriptions live here alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tunepipe.config.base import validate_section
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
from tunepipe.config.deploy import DeployConfig
from tunepipe.config.parameters import pipeline_arguments, section
from tunepipe.config.placement import Placement
from tunepipe.config.run import Config
from tunepipe.config.training import (
    EvaluationConfig,
    ExportConfig,
    FloatRange,
    IntRange,
    SearchSpace,
    TrainingConfig,
    TuningConfig,
)
from tunepipe.errors import ConfigError
from tunepipe.storage.uris import check_location

__all__ = [
    "AugmentationConfig", "CleaningConfig", "ColumnRule", "Config", "DataConfig", "DeployConfig",
    "EvaluationConfig", "ExportConfig", "FloatRange", "ImageConfig", "InputLimits", "IntRange", "Placement",
    "PreprocessingConfig", "SearchSpace", "SplitConfig",
    "TrainingConfig", "TuningConfig", "load_config", "pipeline_arguments", "section", "validate_section",
]


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
    for name, values in (overrides or {}).items():
        existing = raw.get(name)
        if isinstance(values, dict):
            if existing is None or isinstance(existing, dict):  # else validation names the bad section
                kept = {key: value for key, value in values.items() if value is not None}
                raw[name] = {**(existing or {}), **kept}
        elif values is not None:
            raw[name] = values
    config: Config = validate_section(Config, raw, source)
    return config
