"""The whole run's configuration: every section, and the rules that span sections."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tunepipe.config.base import _Section
from tunepipe.config.data import (
    AugmentationConfig,
    CleaningConfig,
    DataConfig,
    ImageConfig,
    PreprocessingConfig,
    SplitConfig,
)
from tunepipe.config.deploy import DeployConfig
from tunepipe.config.training import EvaluationConfig, ExportConfig, SearchSpace, TrainingConfig, TuningConfig
from tunepipe.datasets import SAMPLE_LABELS, SAMPLE_SCHEME


class Config(_Section):
    """A whole run's configuration; every field has a documented default.

    Attributes:
        seed: Seed of the split, the tuner, training and cross-validation (default 42): the
            same data, configuration and seed give the same model.
    """

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
    deploy: DeployConfig = DeployConfig()

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
