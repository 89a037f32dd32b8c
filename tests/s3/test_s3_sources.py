"""Reading s3:// data (single objects, CSV shards under a prefix, schemas) against moto's S3 server."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import put_text

from tunepipe import artifacts
from tunepipe.data.ingest import read_table, run_ingest
from tunepipe.data.sources import download_objects, fingerprint, list_objects
from tunepipe.errors import DataError

pytestmark = pytest.mark.s3


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.choice(["a", "b"], rows)})


def test_single_csv_object(s3_client, bucket_name) -> None:
    put_text(s3_client, bucket_name, "data/train.csv", _table(20, 0).to_csv(index=False))
    frame = read_table(f"s3://{bucket_name}/data/train.csv")
    assert len(frame) == 20 and list(frame.columns) == ["x", "y"]


def test_prefix_of_csv_shards_reads_as_one_dataset(s3_client, bucket_name, tmp_path) -> None:
    for index in range(3):
        put_text(s3_client, bucket_name, f"export/part-{index:04d}.csv", _table(10, index).to_csv(index=False))
    put_text(s3_client, bucket_name, "other/part-9999.csv", "not under the prefix")
    uri = f"s3://{bucket_name}/export/"
    assert len(read_table(uri)) == 30
    assert len(read_table(f"s3://{bucket_name}/export/part-")) == 30  # a name prefix works too
    result = run_ingest(uri, "y", "auto", tmp_path / "out")
    assert result.report["rows_in"] == 30 and result.report["source"] == uri
    assert result.schema["fingerprint"].startswith("s3:")


def test_fingerprint_changes_when_an_object_changes(s3_client, bucket_name) -> None:
    put_text(s3_client, bucket_name, "d/data.csv", _table(5, 0).to_csv(index=False))
    uri = f"s3://{bucket_name}/d/"
    first = fingerprint(uri)
    assert fingerprint(uri) == first  # read from the listing: stable while nothing changes
    put_text(s3_client, bucket_name, "d/data.csv", _table(5, 1).to_csv(index=False))  # new content, new ETag
    second = fingerprint(uri)
    assert second != first
    put_text(s3_client, bucket_name, "d/more.csv", _table(5, 2).to_csv(index=False))
    assert fingerprint(uri) not in (first, second)
    assert len(list_objects(uri)) == 2


def test_baseline_schema_on_s3(s3_client, bucket_name, tmp_path) -> None:
    data = tmp_path / "d.csv"
    _table(30, 0).to_csv(data, index=False)
    run_ingest(str(data), "y", "auto", tmp_path / "first")
    s3_client.upload_file(str(tmp_path / "first" / artifacts.SCHEMA_FILE), bucket_name, "schemas/schema.json")
    result = run_ingest(str(data), "y", "auto", tmp_path / "second", baseline_schema_uri=f"s3://{bucket_name}/schemas")
    report = json.loads((tmp_path / "second" / artifacts.DATA_REPORT_FILE).read_text())
    assert report["drift"]["findings"] == [] == result.report["drift"]["findings"]


def test_missing_prefix_missing_bucket_and_bad_bucket_are_refused(s3_client, bucket_name) -> None:
    with pytest.raises(DataError, match=f"s3://{bucket_name}/nothing/: no objects found"):
        read_table(f"s3://{bucket_name}/nothing/")
    with pytest.raises(DataError, match=r"s3://tp-absent-bucket/x\.csv: cannot list objects"):
        read_table("s3://tp-absent-bucket/x.csv")
    with pytest.raises(DataError, match="'B_A_D' is not a valid bucket name"):
        read_table("s3://B_A_D/data.csv")
    with pytest.raises(DataError, match=r"'\.\.' segments are not allowed"):
        read_table(f"s3://{bucket_name}/a/../b.csv")


def test_unsupported_object_names_the_s3_uri(s3_client, bucket_name) -> None:
    put_text(s3_client, bucket_name, "x/data.xlsx", "whatever")
    with pytest.raises(DataError, match=f"s3://{bucket_name}/x/data.xlsx: unsupported file type"):
        read_table(f"s3://{bucket_name}/x/data.xlsx")


def test_object_sizes_over_max_bytes_are_refused_from_the_listing(s3_client, bucket_name, tmp_path) -> None:
    for index in range(2):
        put_text(s3_client, bucket_name, f"big/part-{index}.csv", _table(40, index).to_csv(index=False))
    uri = f"s3://{bucket_name}/big/"
    total = sum(info.size for info in list_objects(uri))
    with pytest.raises(DataError, match=re.escape(f"{uri}: {total:,} bytes, more than data.max_bytes=")):
        download_objects(uri, tmp_path / "scratch", max_bytes=total - 1)
    assert not (tmp_path / "scratch").exists()  # refused before anything was downloaded
    with pytest.raises(DataError, match="max_bytes"):
        fingerprint(uri, max_bytes=total - 1)
    assert len(read_table(uri)) == 80


def test_fingerprint_and_ingest_components_read_s3(s3_client, bucket_name, tmp_path) -> None:
    """The components as the pipeline runs them: the fingerprint feeds ingest, both on s3://."""
    from kfp.dsl import HTML, Dataset

    from components.fingerprint import fingerprint as fingerprint_component
    from components.ingest import ingest

    put_text(s3_client, bucket_name, "tables/part-0.csv", _table(15, 0).to_csv(index=False))
    put_text(s3_client, bucket_name, "tables/part-1.csv", _table(15, 1).to_csv(index=False))
    uri = f"s3://{bucket_name}/tables/"
    data = {"max_rows": 1000, "max_bytes": 1024**2}
    hashed = fingerprint_component(data_uri=uri, data=data)
    cleaned = Dataset(name="cleaned", uri=str(tmp_path / "cleaned"))
    ingest(data_uri=uri, label="y", task="auto", data_fingerprint=hashed, data=data, cleaning={},
           images={"max_pixels": 10**6}, data_report=HTML(name="report", uri=str(tmp_path / "report.html")),
           cleaned_data=cleaned)
    assert cleaned.metadata[artifacts.META_FINGERPRINT] == hashed and hashed.startswith("s3:")
    assert cleaned.metadata[artifacts.META_ROWS] == 30
