"""The generation preconditions the suite adds to the GCS emulator (preconditions.py), tested themselves:
GCS-specific, because only the emulator lacks them (moto enforces S3's). The contract tests rely on
them wherever they run inside ``place.conditional()``."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from preconditions import enforced

from tunepipe.storage.gcs import GcsObjectStore
from tunepipe.storage.objectstore import PreconditionFailed

pytestmark = pytest.mark.gcs


def test_the_emulator_enforces_create_only_and_replace_only_writes(gcs_client, gcs_bucket: str) -> None:
    store = GcsObjectStore(gcs_bucket, gcs_client)
    with enforced():
        first = store.write_if_generation("record.json", b"a", 0)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("record.json", b"b", 0)
        second = store.write_if_generation("record.json", b"c", first)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("record.json", b"d", first)
        assert store.read("record.json") == (b"c", second)
    with pytest.raises(gexc.GoogleAPICallError, match="412"), enforced():  # the raw answer, as GCS gives it
        gcs_client.bucket(gcs_bucket).blob("record.json").upload_from_string(b"e", if_generation_match=0)
