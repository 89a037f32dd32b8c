"""Reading data from every store the same way: single objects, prefixes of shards, image folders,
baseline schemas, fingerprints that follow the data, refusals that name the location, and the size
limit checked before anything is downloaded; the ingest components read it as the pipeline does."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from store_places import Place, csv_bytes, table

from tunepipe import artifacts
from tunepipe.config import InputLimits
from tunepipe.data.ingest import read_table, run_ingest
from tunepipe.data.sources import download_objects, fingerprint, list_objects
from tunepipe.errors import DataError


def test_single_csv_object(place: Place) -> None:
    place.put("data/train.csv", csv_bytes(20, 0))
    frame = read_table(place.uri("data/train.csv"))
    assert len(frame) == 20 and list(frame.columns) == ["x", "y"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_prefix_of_shards_reads_as_one_dataset(place: Place, tmp_path, fmt: str) -> None:
    for index in range(3):
        buffer = io.BytesIO()
        table(10, index).to_parquet(buffer, index=False) if fmt == "parquet" else table(10, index).to_csv(
            buffer, index=False)
        place.put(f"export/part-{index:04d}.{fmt}", buffer.getvalue())
    place.put("export/_SUCCESS", b"")
    place.put(f"other/part-9999.{fmt}", b"not under the prefix")
    uri = place.uri("export/")
    assert len(read_table(uri)) == 30
    if place.remote:  # an object name prefix (a local path must name a file or folder)
        assert len(read_table(place.uri("export/part-"))) == 30
    result = run_ingest(uri, "y", "auto", tmp_path / "out")
    assert result.report["rows_in"] == 30 and result.report["source"] == uri
    assert result.schema["fingerprint"].startswith(f"{place.fingerprint_tag}:")


def test_fingerprint_changes_when_an_object_changes(place: Place) -> None:
    place.put("d/data.csv", csv_bytes(5, 0))
    uri = place.uri("d/")
    first = fingerprint(uri)
    assert fingerprint(uri) == first  # stable while nothing changes
    place.put("d/data.csv", csv_bytes(5, 1))  # new content (a new generation, a new ETag)
    second = fingerprint(uri)
    assert second != first
    place.put("d/more.csv", csv_bytes(5, 2))
    assert fingerprint(uri) not in (first, second)
    if place.remote:
        assert len(list_objects(uri)) == 2


def test_image_folder(place: Place, tmp_path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for index in range(6):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buffer, format="PNG")
            place.put(f"pets/{label}/{index}.png", buffer.getvalue())
    result = run_ingest(place.uri("pets"), "animal", "auto", tmp_path / "out")
    assert result.schema["kind"] == "images" and result.schema["image"]["channels"] == 3
    assert sorted(set(result.frame["animal"])) == ["cat", "dog"] and len(result.frame) == 12


def test_baseline_schema(place: Place, tmp_path) -> None:
    data = tmp_path / "d.csv"
    table(30, 0).to_csv(data, index=False)
    run_ingest(str(data), "y", "auto", tmp_path / "first")
    place.put("schemas/schema.json", (tmp_path / "first" / artifacts.SCHEMA_FILE).read_bytes())
    result = run_ingest(str(data), "y", "auto", tmp_path / "second", baseline_schema_uri=place.uri("schemas"))
    report = json.loads((tmp_path / "second" / artifacts.DATA_REPORT_FILE).read_text())
    assert report["drift"]["findings"] == [] == result.report["drift"]["findings"]


def test_missing_prefix_missing_bucket_bad_bucket_and_climbing_names_are_refused(remote: Place) -> None:
    with pytest.raises(DataError, match=f"{remote.uri('nothing/')}: no objects found"):
        read_table(remote.uri("nothing/"))
    scheme = remote.root.split("://")[0]
    with pytest.raises(DataError, match=rf"{scheme}://tp-absent-bucket/x\.csv: cannot list objects"):
        read_table(f"{scheme}://tp-absent-bucket/x.csv")
    with pytest.raises(DataError, match="'B_A_D' is not a valid bucket name"):
        read_table(f"{scheme}://B_A_D/data.csv")
    with pytest.raises(DataError, match=r"'\.\.' segments are not allowed"):
        read_table(remote.uri("a/../b.csv"))


def test_an_unsupported_object_is_named_by_its_uri(place: Place) -> None:
    place.put("x/data.xlsx", b"whatever")
    with pytest.raises(DataError, match=f"{re.escape(place.uri('x/data.xlsx'))}: unsupported file type"):
        read_table(place.uri("x/data.xlsx"))


def test_object_sizes_over_max_bytes_are_refused_from_the_listing(remote: Place, tmp_path) -> None:
    for index in range(2):
        remote.put(f"big/part-{index}.csv", csv_bytes(40, index))
    uri = remote.uri("big/")
    total = sum(info.size for info in list_objects(uri))
    with pytest.raises(DataError, match=re.escape(f"{uri}: {total:,} bytes, more than data.max_bytes=")):
        download_objects(uri, tmp_path / "scratch", max_bytes=total - 1)
    assert not (tmp_path / "scratch").exists()  # refused before anything was downloaded
    with pytest.raises(DataError, match="max_bytes"):
        fingerprint(uri, max_bytes=total - 1)
    with pytest.raises(DataError, match="max_bytes"):
        run_ingest(uri, "y", "auto", tmp_path / "out", limits=InputLimits(max_bytes=total - 1))
    assert not (tmp_path / "out").exists()
    assert len(run_ingest(uri, "y", "auto", tmp_path / "out", limits=InputLimits(max_bytes=total)).frame) == 80
    assert len(read_table(uri)) == 80


def test_fingerprint_and_ingest_components_read_the_store(place: Place, tmp_path) -> None:
    """The components as the pipeline runs them: the fingerprint feeds ingest, both on the store."""
    from kfp.dsl import HTML, Dataset

    from components import step_functions

    fingerprint_component, ingest = (step_functions()[name] for name in ("fingerprint", "ingest"))

    place.put("tables/part-0.csv", csv_bytes(15, 0))
    place.put("tables/part-1.csv", csv_bytes(15, 1))
    uri = place.uri("tables/")
    data = {"max_rows": 1000, "max_bytes": 1024**2}
    hashed = fingerprint_component(data_uri=uri, data=data)
    cleaned = Dataset(name="cleaned", uri=str(tmp_path / "cleaned"))
    ingest(data_uri=uri, label="y", task="auto", data_fingerprint=hashed, data=data, cleaning={},
           images={"max_pixels": 10**6}, data_report=HTML(name="report", uri=str(tmp_path / "report.html")),
           cleaned_data=cleaned)
    assert cleaned.metadata[artifacts.META_FINGERPRINT] == hashed and hashed.startswith(f"{place.fingerprint_tag}:")
    assert cleaned.metadata[artifacts.META_ROWS] == 30
    assert (tmp_path / "report.html").read_text().count(uri) >= 1
