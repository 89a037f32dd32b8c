"""Ingest component: source data -> cleaned Parquet, schema, data report (JSON and HTML)."""

from kfp.dsl import HTML, Dataset, Output


def ingest(
    data_uri: str,
    label: str,
    task: str,
    data_fingerprint: str,
    data: dict,
    cleaning: dict,
    images: dict,
    cleaned_data: Output[Dataset],
    data_report: Output[HTML],
) -> None:
    """Reads, validates and cleans the source data; checks drift against a baseline schema.

    Args:
        data_uri: Local path, gs:// or s3:// bucket/prefix, or sample://name: CSV, Parquet, JSONL, shards,
            or an image folder with one sub-folder per class.
        label: Column to predict (image folders: the column that holds the class).
        task: classification, regression or auto.
        data_fingerprint: Content hash of the source from the fingerprint step; as an input
            it is part of this step's cache key, so changed data at the same URI is never
            served from the cache.
        data: The data section: input limits and the baseline schema (configs/default.yaml).
        cleaning: The cleaning section: rules, global and per column.
        images: The images section: size, corrupt-file tolerance, pixel limit.
        cleaned_data: Folder with the cleaned Parquet, schema and JSON data report.
        data_report: The data report as HTML, shown in the Kubeflow UI.
    """
    from tunepipe.config import section
    from tunepipe.ingest_step import ingest_metadata, ingest_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    result = ingest_step(
        data_uri, label, task, section("data", data), section("cleaning", cleaning), section("images", images),
        cleaned_data.path, data_report.path, data_fingerprint,
    )
    cleaned_data.metadata.update(ingest_metadata(result))
