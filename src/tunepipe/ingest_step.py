"""The ingest step's entry point: validated settings in, the cleaned data and its report out.

Nothing here imports Keras or TensorFlow, directly or through another module: the ingest
component runs in a process of its own, and importing TensorFlow there would cost it several
seconds for nothing (see the overhead section of docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import CleaningConfig, DataConfig, ImageConfig
from tunepipe.data.ingest import IngestResult, run_ingest

log = logging.getLogger(__name__)


def ingest_step(
    data_uri: str, label: str, task: str, data: DataConfig, cleaning: CleaningConfig, images: ImageConfig,
    cleaned_dir: PathLike, html_path: PathLike, fingerprint: str = "",
) -> IngestResult:
    """Runs ingest with the data, cleaning and image sections, as validated by the component.

    Args:
        data_uri: The source (the data section's ``uri``, a pipeline parameter of its own).
        label: Column to predict.
        task: ``classification``, ``regression`` or ``auto``.
        data: The data section: input limits and the baseline schema.
        cleaning: The cleaning rules.
        images: How image folders are decoded.
        cleaned_dir: Folder for the cleaned Parquet, schema and JSON report.
        html_path: The data report as HTML.
        fingerprint: What the fingerprint step hashed (empty: not known); data that changed
            since is reported, as the cache key was computed from the earlier content.
    """
    result = run_ingest(
        data_uri, label, task, cleaned_dir, cleaning=cleaning, images=images,
        baseline_schema_uri=data.baseline_schema_uri, html_path=html_path, limits=data,
    )
    if fingerprint and fingerprint != result.schema["fingerprint"]:
        log.warning("ingest: warning: the data changed after the fingerprint step (%s, now %s)",
                    fingerprint, result.schema["fingerprint"])
    return result


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
