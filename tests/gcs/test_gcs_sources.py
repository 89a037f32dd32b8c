"""Reading gs:// data (single objects, sharded prefixes, image folders) against a local emulator."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tunepipe import artifacts
from tunepipe.data.ingest import read_table, run_ingest
from tunepipe.data.sources import fingerprint, list_objects
from tunepipe.errors import DataError

pytestmark = pytest.mark.gcs


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.choice(["a", "b"], rows)})


def test_single_csv_object(bucket) -> None:
    bucket.blob("data/train.csv").upload_from_string(_table(20, 0).to_csv(index=False))
    frame = read_table(f"gs://{bucket.name}/data/train.csv")
    assert len(frame) == 20 and list(frame.columns) == ["x", "y"]


def test_prefix_of_shards_reads_as_one_dataset(bucket, tmp_path) -> None:
    for index in range(3):
        buffer = io.BytesIO()
        _table(10, index).to_parquet(buffer, index=False)
        bucket.blob(f"export/part-{index:04d}.parquet").upload_from_string(buffer.getvalue())
    bucket.blob("export/_SUCCESS").upload_from_string(b"")
    bucket.blob("other/part-9999.parquet").upload_from_string(b"not under the prefix")
    uri = f"gs://{bucket.name}/export/"
    assert len(read_table(uri)) == 30
    assert len(read_table(f"gs://{bucket.name}/export/part-")) == 30  # a name prefix works too
    result = run_ingest(uri, "y", "auto", tmp_path / "out")
    assert result.report["rows_in"] == 30 and result.report["source"] == uri
    assert result.schema["fingerprint"].startswith("gcs:")


def test_fingerprint_changes_when_an_object_is_rewritten(bucket) -> None:
    blob = bucket.blob("d/data.csv")
    blob.upload_from_string(_table(5, 0).to_csv(index=False))
    uri = f"gs://{bucket.name}/d/"
    first = fingerprint(uri)
    assert fingerprint(uri) == first
    blob.upload_from_string(_table(5, 1).to_csv(index=False))  # new generation and content
    assert fingerprint(uri) != first
    bucket.blob("d/more.csv").upload_from_string(_table(5, 2).to_csv(index=False))
    assert len(list_objects(uri)) == 2


def test_image_folder_on_gcs(bucket, tmp_path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for index in range(6):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buffer, format="PNG")
            bucket.blob(f"pets/{label}/{index}.png").upload_from_string(buffer.getvalue())
    result = run_ingest(f"gs://{bucket.name}/pets", "animal", "auto", tmp_path / "out")
    assert result.schema["kind"] == "images" and result.schema["image"]["channels"] == 3
    assert sorted(set(result.frame["animal"])) == ["cat", "dog"] and len(result.frame) == 12


def test_baseline_schema_on_gcs(bucket, tmp_path) -> None:
    data = tmp_path / "d.csv"
    _table(30, 0).to_csv(data, index=False)
    run_ingest(str(data), "y", "auto", tmp_path / "first")
    bucket.blob("schemas/schema.json").upload_from_filename(str(tmp_path / "first" / artifacts.SCHEMA_FILE))
    result = run_ingest(str(data), "y", "auto", tmp_path / "second", baseline_schema_uri=f"gs://{bucket.name}/schemas")
    report = json.loads((tmp_path / "second" / artifacts.DATA_REPORT_FILE).read_text())
    assert report["drift"]["findings"] == [] == result.report["drift"]["findings"]


def test_missing_prefix_and_bad_bucket_are_refused(bucket) -> None:
    with pytest.raises(DataError, match=f"gs://{bucket.name}/nothing/: no objects found"):
        read_table(f"gs://{bucket.name}/nothing/")
    with pytest.raises(DataError, match="'B_A_D' is not a valid bucket name"):
        read_table("gs://B_A_D/data.csv")


def test_unsupported_object_names_the_gs_uri(bucket) -> None:
    bucket.blob("x/data.xlsx").upload_from_string(b"whatever")
    with pytest.raises(DataError, match=f"gs://{bucket.name}/x/data.xlsx: unsupported file type"):
        read_table(f"gs://{bucket.name}/x/data.xlsx")


def test_fingerprint_and_ingest_components_read_gcs(bucket, tmp_path) -> None:
    """The components as the pipeline runs them: the fingerprint feeds ingest, both on gs://."""
    from kfp.dsl import HTML, Dataset

    from components.fingerprint import fingerprint as fingerprint_component
    from components.ingest import ingest

    bucket.blob("tables/part-0.csv").upload_from_string(_table(15, 0).to_csv(index=False))
    bucket.blob("tables/part-1.csv").upload_from_string(_table(15, 1).to_csv(index=False))
    uri = f"gs://{bucket.name}/tables/"
    data = {"max_rows": 1000, "max_bytes": 1024**2}
    hashed = fingerprint_component(data_uri=uri, data=data)
    cleaned = Dataset(name="cleaned", uri=str(tmp_path / "cleaned"))
    ingest(data_uri=uri, label="y", task="auto", data_fingerprint=hashed, data=data, cleaning={},
           images={"max_pixels": 10**6}, data_report=HTML(name="report", uri=str(tmp_path / "report.html")),
           cleaned_data=cleaned)
    assert cleaned.metadata[artifacts.META_FINGERPRINT] == hashed
    assert cleaned.metadata[artifacts.META_ROWS] == 30
    assert (tmp_path / "report.html").read_text().count(uri) >= 1


def test_object_sizes_over_max_bytes_are_refused_from_the_listing(bucket, tmp_path) -> None:
    from tunepipe.config import InputLimits
    from tunepipe.data.sources import download_objects

    for index in range(2):
        bucket.blob(f"big/part-{index}.csv").upload_from_string(_table(40, index).to_csv(index=False))
    uri = f"gs://{bucket.name}/big/"
    total = sum(blob.size for blob in list_objects(uri))
    with pytest.raises(DataError, match=re.escape(f"{uri}: {total:,} bytes, more than data.max_bytes=")):
        download_objects(uri, tmp_path / "scratch", max_bytes=total - 1)
    assert not (tmp_path / "scratch").exists()  # refused before anything was downloaded
    with pytest.raises(DataError, match="max_bytes"):
        fingerprint(uri, max_bytes=total - 1)
    with pytest.raises(DataError, match="max_bytes"):
        run_ingest(uri, "y", "auto", tmp_path / "out", limits=InputLimits(max_bytes=total - 1))
    assert not (tmp_path / "out").exists()
    assert len(run_ingest(uri, "y", "auto", tmp_path / "out", limits=InputLimits(max_bytes=total)).frame) == 80
