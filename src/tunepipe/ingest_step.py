"""The ingest step: validated settings in, the cleaned data and its report out.

Nothing here imports Keras or TensorFlow, directly or through another module: the ingest
component runs in a process of its own, and importing TensorFlow there would cost it several
seconds for nothing (see the overhead section of docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import CleaningConfig, DataConfig, ImageConfig
from tunepipe.contract import StepResult
from tunepipe.data.ingest import IngestResult, run_ingest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What ingest reads.

    Attributes:
        data_uri: The source (the data section's ``uri``, a pipeline parameter of its own).
        label: Column to predict.
        task: ``classification``, ``regression`` or ``auto``.
        data_fingerprint: What the fingerprint step hashed (empty: not known); data that changed
            since is reported, as the cache key was computed from the earlier content.
        data: The data section: input limits and the baseline schema.
        cleaning: The cleaning rules.
        images: How image folders are decoded.
    """

    data_uri: str
    label: str
    task: str
    data_fingerprint: str
    data: DataConfig
    cleaning: CleaningConfig
    images: ImageConfig


@dataclass(frozen=True)
class Outputs:
    """Where ingest writes: a folder for the cleaned Parquet, schema and JSON report; the report as HTML."""

    cleaned_data: PathLike
    data_report: PathLike


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Runs ingest with the data, cleaning and image sections; notes rows, task, fingerprint, kind
    and findings on the cleaned data (:func:`ingest_metadata`)."""
    result = run_ingest(
        inputs.data_uri, inputs.label, inputs.task, outputs.cleaned_data, cleaning=inputs.cleaning,
        images=inputs.images, baseline_schema_uri=inputs.data.baseline_schema_uri, html_path=outputs.data_report,
        limits=inputs.data,
    )
    if inputs.data_fingerprint and inputs.data_fingerprint != result.schema["fingerprint"]:
        log.warning("ingest: warning: the data changed after the fingerprint step (%s, now %s)",
                    inputs.data_fingerprint, result.schema["fingerprint"])
    return StepResult(metadata={"cleaned_data": ingest_metadata(result)})


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
