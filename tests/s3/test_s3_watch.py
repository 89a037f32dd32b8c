"""``tunepipe watch`` on an ``s3://`` location against moto's S3 server: snapshots listed with their
ETags, records created with ``If-None-Match: *`` and updated with ``If-Match`` (moto enforces both),
one run per complete snapshot, and a second watcher finding every record taken."""

from __future__ import annotations

import pytest
from watch_helpers import RecordingLauncher, penguin_rows

from tunepipe.storage.objectstore import PreconditionFailed
from tunepipe.watching.records import CLAIMED, Record, StoreRecords, records_for
from tunepipe.watching.watcher import Watcher

pytestmark = pytest.mark.s3


def put_text(client, bucket: str, key: str, text: str) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=text.encode())


def test_records_are_create_only_and_replace_only_on_s3(s3_client, bucket_name: str) -> None:
    records = StoreRecords(f"s3://{bucket_name}/data/_tunepipe_watch", client=s3_client)
    record = Record("s3:abc", f"s3://{bucket_name}/data/a", "tunepipe-watch-s3-abc", CLAIMED, "me/1", 0.0)
    with records.slot("s3:abc") as slot:
        token = slot.create(record)
        with pytest.raises(PreconditionFailed):
            slot.create(record)
        newer = slot.replace(record.finished("started", "run-1"), token)
        with pytest.raises(PreconditionFailed):
            slot.replace(record, token)
        assert slot.read() == (record.finished("started", "run-1"), newer)


def test_each_complete_snapshot_starts_one_run_and_a_second_watcher_none(s3_client, bucket_name: str) -> None:
    location = f"s3://{bucket_name}/incoming"
    for day in ("d1", "d2"):
        put_text(s3_client, bucket_name, f"incoming/{day}/part-0.csv", penguin_rows(3 if day == "d1" else 7))
    put_text(s3_client, bucket_name, "incoming/d1/_SUCCESS", "")
    launcher = RecordingLauncher()
    first = Watcher(location, records_for(location, client=s3_client), launcher)
    assert [o.action for o in first.poll()] == ["started", "waiting"]
    put_text(s3_client, bucket_name, "incoming/d2/_SUCCESS", "")
    second = Watcher(location, records_for(location, client=s3_client), launcher)
    assert [o.action for o in second.poll()] == ["known", "started"]
    assert [o.action for o in first.poll()] == ["started", "known"]  # its own, remembered; the other's, read
    assert launcher.launches == [f"{location}/d1", f"{location}/d2"]
    keys = [item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket_name, Prefix="incoming/_tunepipe_watch/")
            ["Contents"]]
    assert len(keys) == 2 and all(key.split("/")[-1].startswith("s3-") for key in keys)  # the s3: fingerprints
