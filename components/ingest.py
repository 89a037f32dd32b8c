"""Ingest component: source file -> cleaned Parquet, schema and data report."""

from kfp.dsl import Dataset, Output


def ingest(
    data_uri: str,
    label: str,
    task: str,
    data_fingerprint: str,
    cleaned_data: Output[Dataset],
) -> None:
    """Reads, validates and cleans the source data.

    Args:
        data_uri: CSV or Parquet file.
        label: Column to predict.
        task: classification, regression or auto.
        data_fingerprint: Content hash of the source from the fingerprint step; as an input
            it is part of this step's cache key, so changed data at the same URI is never
            served from the cache.
        cleaned_data: Folder with the cleaned Parquet, schema and data report.
    """
    from tunepipe import artifacts
    from tunepipe.steps import configure_logging, run_ingest

    configure_logging()
    result = run_ingest(data_uri, label, task, cleaned_data.path)
    if data_fingerprint and data_fingerprint != result.schema["fingerprint"]:
        print(f"ingest: warning: the data changed after the fingerprint step ({data_fingerprint})")
    cleaned_data.metadata[artifacts.META_ROWS] = result.report["rows_out"]
    cleaned_data.metadata[artifacts.META_TASK] = result.schema["task"]
    cleaned_data.metadata[artifacts.META_FINGERPRINT] = result.schema["fingerprint"]
