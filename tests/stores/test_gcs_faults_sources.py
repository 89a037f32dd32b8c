"""Reading gs:// data (one object, a prefix of shards) through a proxy that injects faults: GCS-specific.

503 / 429 answers, connection resets and answers cut off mid-body are injected at the HTTP level
(fault_proxy.py, in front of the GCS emulator, speaking its JSON API) into the real client
library's requests; S3's own fault tests go through botocore's hook (test_s3_faults.py). What
reading guarantees on every store is in test_store_sources.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from store_places import FAST_ATTEMPTS, csv_bytes, files_under

from tunepipe.data.ingest import run_ingest
from tunepipe.data.sources import download_objects, fingerprint
from tunepipe.errors import DataError, ObjectStoreError

pytestmark = pytest.mark.gcs

SHARDS = [f"data/part-{index:04d}.csv" for index in range(3)]
SINGLE = "one/table.csv"
# The emulator's download path; object names are matched URL-decoded.
DOWNLOAD = "^/download/storage/v1/b/[^/]+/o/"
LISTING = r"^/storage/v1/b/[^/]+/o\?"


@pytest.fixture
def data_bucket(proxied_client, gcs_bucket: str) -> str:
    """A bucket holding three CSV shards under data/ and one CSV object, written through the proxy."""
    bucket = proxied_client.bucket(gcs_bucket)
    for index, name in enumerate([*SHARDS, SINGLE]):
        bucket.blob(name).upload_from_string(csv_bytes(200, index))
    return gcs_bucket


def _read_both(bucket: str, client, retry, target: Path) -> tuple[dict[str, bytes], dict[str, bytes], list[str]]:
    """The single object and the shards as local files, and the two fingerprints."""
    single = download_objects(f"gs://{bucket}/{SINGLE}", target / "single", client, retry)
    shards = download_objects(f"gs://{bucket}/data/", target / "shards", client, retry)
    prints = [fingerprint(f"gs://{bucket}/{SINGLE}", client, retry), fingerprint(f"gs://{bucket}/data/", client, retry)]
    return {single.name: single.read_bytes()}, files_under(shards), prints


@pytest.mark.parametrize(("kind", "status"), [("status", 503), ("status", 429), ("reset", 0), ("truncate", 0)])
def test_read_faults_below_the_bound_are_survived_with_identical_results(
    data_bucket, proxied_client, fault_proxy, fast_retry, tmp_path, kind, status
) -> None:
    reference = _read_both(data_bucket, proxied_client, fast_retry, tmp_path / "reference")
    below = FAST_ATTEMPTS - 1
    fault_proxy.reset()
    shard = fault_proxy.fail("GET", DOWNLOAD + "data/part-0001.csv", kind, times=below, status=status)
    single = fault_proxy.fail("GET", DOWNLOAD + SINGLE, kind, times=below, status=status)
    listing = fault_proxy.fail("GET", LISTING + ".*prefix=data/", kind, times=below, status=status)
    assert _read_both(data_bucket, proxied_client, fast_retry, tmp_path / "faulty") == reference
    assert shard.hits == single.hits == listing.hits == below
    assert fault_proxy.count("GET", DOWNLOAD + "data/part-0001.csv") == FAST_ATTEMPTS


@pytest.mark.parametrize(("uri", "operation", "path"), [
    (SINGLE, f"download of gs://{{bucket}}/{SINGLE}", DOWNLOAD + SINGLE),
    ("data/", "download of gs://{bucket}/data/part-0001.csv", DOWNLOAD + "data/part-0001.csv"),
    ("data/", "listing of gs://{bucket}/data/", LISTING),
])
def test_read_faults_beyond_the_bound_give_one_clear_error(
    data_bucket, proxied_client, fault_proxy, fast_retry, tmp_path, uri, operation, path
) -> None:
    fault_proxy.reset()
    fault = fault_proxy.fail("GET", path, "status", times=99, status=503)
    with pytest.raises(ObjectStoreError) as raised:
        download_objects(f"gs://{data_bucket}/{uri}", tmp_path, proxied_client, fast_retry)
    message = str(raised.value)
    assert message.startswith(f"{operation.format(bucket=data_bucket)} failed after {FAST_ATTEMPTS} attempt(s)")
    assert "last error: ServiceUnavailable" in message
    assert fault.hits == FAST_ATTEMPTS == fault_proxy.count("GET", path)


def test_a_refused_read_is_not_retried(data_bucket, proxied_client, fault_proxy, fast_retry, tmp_path) -> None:
    fault_proxy.reset()
    fault = fault_proxy.fail("GET", DOWNLOAD + SINGLE, "status", times=99, status=403)
    with pytest.raises(ObjectStoreError, match=f"download of gs://{data_bucket}/{SINGLE} was refused .*Forbidden"):
        download_objects(f"gs://{data_bucket}/{SINGLE}", tmp_path, proxied_client, fast_retry)
    assert fault.hits == 1


def test_an_object_gone_after_the_listing_is_a_data_error(data_bucket, proxied_client, fault_proxy, fast_retry,
                                                          tmp_path) -> None:
    fault_proxy.reset()
    fault = fault_proxy.fail("GET", DOWNLOAD + "data/part-0002.csv", "status", times=1, status=404)
    with pytest.raises(DataError, match=rf"gs://{data_bucket}/data/part-0002\.csv: replaced or deleted while being "
                                        "read; run again"):
        download_objects(f"gs://{data_bucket}/data/", tmp_path, proxied_client, fast_retry)
    assert fault.hits == 1  # an answer, not a fault: not retried


def test_a_download_cut_off_leaves_no_partial_file_and_a_rerun_reads_everything(
    data_bucket, proxied_client, fault_proxy, fast_retry, tmp_path
) -> None:
    reference = files_under(download_objects(f"gs://{data_bucket}/data/", tmp_path / "reference", proxied_client,
                                        fast_retry))
    fault_proxy.reset()
    fault_proxy.fail("GET", DOWNLOAD + "data/part-0001.csv", "truncate", times=99)
    with pytest.raises(ObjectStoreError, match=r"part-0001\.csv failed after"):
        download_objects(f"gs://{data_bucket}/data/", tmp_path / "cut", proxied_client, fast_retry)
    left = files_under(tmp_path / "cut")
    assert sorted(left) == ["data/part-0000.csv"]  # no part-0001.csv, no hidden .tmp- file
    assert left["data/part-0000.csv"] == reference["part-0000.csv"]  # what is there is whole
    fault_proxy.reset()
    again = download_objects(f"gs://{data_bucket}/data/", tmp_path / "cut", proxied_client, fast_retry)
    assert files_under(again) == reference


def test_ingest_reads_through_the_default_client_and_policy(
    data_bucket, fault_proxy, monkeypatch, tmp_path
) -> None:
    """The path the pipeline takes: no gcs_client or policy passed, the environment names the endpoint."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fault_proxy.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "tunepipe-test")
    fault_proxy.reset()
    listing = fault_proxy.fail("GET", LISTING, "status", times=1, status=503)
    shard = fault_proxy.fail("GET", DOWNLOAD + "data/part-0002.csv", "reset", times=1)
    result = run_ingest(f"gs://{data_bucket}/data/", "y", "auto", tmp_path / "out")
    assert result.report["rows_in"] == 600
    assert listing.hits == shard.hits == 1
