"""The data steps' entry points (ingest, preprocess), kept apart from the model steps.

Nothing here imports Keras or TensorFlow, directly or through another module: the ingest and
preprocess components run in processes of their own, and importing TensorFlow there would cost
each of them several seconds for nothing (see the overhead section of docs/benchmarks.md).
:mod:`tunepipe.steps` re-exports these functions beside the model steps.
"""

from __future__ import annotations

from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import (
    AugmentationConfig,
    CleaningConfig,
    ImageConfig,
    InputLimits,
    PreprocessingConfig,
    SplitConfig,
    validate_section,
)
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.ingest import IngestResult, run_ingest
from tunepipe.data.preprocess import run_preprocess


def ingest_step(
    data_uri: str, label: str, task: str, cleaning: dict[str, Any], images: dict[str, Any],
    baseline_schema_uri: str, cleaned_dir: PathLike, html_path: PathLike, limits: dict[str, Any] | None = None,
) -> IngestResult:
    """Validates the cleaning, image and limit settings (pipeline parameters), then runs ingest."""
    return run_ingest(
        data_uri, label, task, cleaned_dir,
        cleaning=validate_section(CleaningConfig, cleaning, "cleaning parameter"),
        images=validate_section(ImageConfig, images, "pipeline parameters"),
        baseline_schema_uri=baseline_schema_uri, html_path=html_path,
        limits=validate_section(InputLimits, limits or {}, "pipeline parameters"),
    )


def ingest_metadata(result: IngestResult) -> dict[str, Any]:
    """The metadata recorded on the cleaned-data artifact: rows, task, fingerprint, kind, findings."""
    drift = result.report.get("drift") or {}
    skipped = (result.report.get("images") or {}).get("corrupt_skipped", [])
    return {
        artifacts.META_ROWS: result.report["rows_out"],
        artifacts.META_TASK: result.schema["task"],
        artifacts.META_FINGERPRINT: result.schema["fingerprint"],
        artifacts.META_KIND: result.schema.get("kind", "table"),
        artifacts.META_DRIFT_FINDINGS: len(drift.get("findings", [])),
        artifacts.META_CORRUPT_SKIPPED: len(skipped),
    }


def preprocess_step(
    cleaned_dir: PathLike, split: dict[str, Any], seed: int, output_dirs: dict[str, PathLike],
    preprocessing: dict[str, Any], augmentation: dict[str, Any],
) -> PreprocessingSpec:
    """Validates the split, encoding and augmentation settings, then splits and fits the specification."""
    source = "pipeline parameters"
    return run_preprocess(
        cleaned_dir, validate_section(SplitConfig, split, source), seed, dict(output_dirs),
        validate_section(PreprocessingConfig, preprocessing, source),
        validate_section(AugmentationConfig, augmentation, "augmentation parameter"),
    )
