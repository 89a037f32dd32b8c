"""Ingest component: source data -> cleaned Parquet, schema, data report (JSON and HTML)."""

from kfp.dsl import HTML, Dataset, Output


def ingest(
    data_uri: str,
    label: str,
    task: str,
    data_fingerprint: str,
    cleaning: dict,
    image_height: int,
    image_width: int,
    max_corrupt_fraction: float,
    max_image_pixels: int,
    baseline_schema_uri: str,
    allowed_roots: list,
    max_rows: int,
    max_bytes: int,
    cleaned_data: Output[Dataset],
    data_report: Output[HTML],
) -> None:
    """Reads, validates and cleans the source data; checks drift against a baseline schema.

    Args:
        data_uri: Local path, gs://bucket/prefix or sample://name: CSV, Parquet, JSONL, shards,
            or an image folder with one sub-folder per class.
        label: Column to predict (image folders: the column that holds the class).
        task: classification, regression or auto.
        data_fingerprint: Content hash of the source from the fingerprint step; as an input
            it is part of this step's cache key, so changed data at the same URI is never
            served from the cache.
        cleaning: Cleaning rules, global and per column (see configs/default.yaml).
        image_height: Height images are resized to.
        image_width: Width images are resized to.
        max_corrupt_fraction: Share of undecodable images skipped before ingest fails.
        max_image_pixels: Most pixels of one image, read from its header before decoding.
        baseline_schema_uri: An earlier run's schema.json (or its folder); empty: no drift check.
        allowed_roots: Local folders local data must lie in; empty allows any local path.
        max_rows: Most rows read over all shards (image folders: files).
        max_bytes: Most bytes of source data, checked before it is read or downloaded.
        cleaned_data: Folder with the cleaned Parquet, schema and JSON data report.
        data_report: The data report as HTML, shown in the Kubeflow UI.
    """
    from tunepipe.ingest_step import ingest_metadata, ingest_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    images = {"height": image_height, "width": image_width, "max_corrupt_fraction": max_corrupt_fraction,
              "max_pixels": max_image_pixels}
    limits = {"allowed_roots": allowed_roots, "max_rows": max_rows, "max_bytes": max_bytes}
    result = ingest_step(
        data_uri, label, task, cleaning, images, baseline_schema_uri, cleaned_data.path, data_report.path, limits
    )
    if data_fingerprint and data_fingerprint != result.schema["fingerprint"]:
        print(f"ingest: warning: the data changed after the fingerprint step ({data_fingerprint})")
    cleaned_data.metadata.update(ingest_metadata(result))
