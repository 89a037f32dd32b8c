"""The ingest step's entry point: validated settings in, the cleaned data and its report out.

Nothing here imports Keras or TensorFlow, directly or through another module: the ingest
component runs in a process of its own, and importing TensorFlow there would cost it several
seconds for nothing (see the overhead section of docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import CleaningConfig, ImageConfig, InputLimits, validate_section
from tunepipe.data.ingest import IngestResult, run_ingest


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
