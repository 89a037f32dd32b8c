"""``tunepipe watch`` on every store: records created only if absent and replaced only if unchanged
(moto enforces both; the GCS emulator inside ``place.conditional()``, as Cloud Storage does), one
run per complete snapshot with a second watcher finding every record taken, and the randomized
SIGKILL drill against the recording fake Kubeflow Pipelines server."""

import sys
from pathlib import Path

import pytest
from store_places import Place
from watch_helpers import RecordingLauncher, penguin_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
from fake_kfp import FakeKfp
from watch_scenarios import Drill, environment, every_point, run_drill, two_at_once

from tunepipe.storage.objectstore import PreconditionFailed
from tunepipe.watching.records import CLAIMED, Record, StoreRecords, records_for
from tunepipe.watching.watcher import Watcher


def test_records_are_create_only_and_replace_only(remote: Place) -> None:
    records = StoreRecords(remote.uri("data/_tunepipe_watch"), client=remote.client)
    record = Record("x:abc", remote.uri("data/a"), "tunepipe-watch-x-abc", CLAIMED, "me/1", 0.0)
    with remote.conditional(), records.slot("x:abc") as slot:
        token = slot.create(record)
        with pytest.raises(PreconditionFailed):
            slot.create(record)
        newer = slot.replace(record.finished("started", "run-1"), token)
        with pytest.raises(PreconditionFailed):
            slot.replace(record, token)
        assert slot.read() == (record.finished("started", "run-1"), newer)


def test_each_complete_snapshot_starts_one_run_and_a_second_watcher_none(place: Place) -> None:
    location = place.uri("incoming")
    for day in ("d1", "d2"):
        place.put(f"incoming/{day}/part-0.csv", penguin_rows(3 if day == "d1" else 7).encode())
    place.put("incoming/d1/_SUCCESS", b"")
    launcher = RecordingLauncher()
    with place.conditional():
        first = Watcher(location, records_for(location, client=place.client), launcher)
        assert [o.action for o in first.poll()] == ["started", "waiting"]
        place.put("incoming/d2/_SUCCESS", b"")
        second = Watcher(location, records_for(location, client=place.client), launcher)
        assert [o.action for o in second.poll()] == ["known", "started"]
        assert [o.action for o in first.poll()] == ["started", "known"]  # its own, remembered; the other's, read
    assert launcher.launches == [f"{location}/d1", f"{location}/d2"]
    records = [name for name in place.names("incoming/_tunepipe_watch/") if name.endswith(".json")]
    assert len(records) == 2 and all(name.split("/")[-1].startswith(f"{place.fingerprint_tag}-") for name in records)


@pytest.fixture
def kfp_server(tmp_path: Path):  # no __future__ annotations here: kfp reads the component's
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def echo(text: str) -> str:
        return text

    @dsl.pipeline(name="tunepipe")
    def tiny(data_uri: str = "sample://penguins") -> None:
        echo(text=data_uri)

    package = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(tiny, str(package))
    fake = FakeKfp().start()
    fake.add_version(fake.add_pipeline("tunepipe"), "tunepipe", package.read_text())
    yield fake
    fake.stop()


@pytest.fixture
def drill(remote: Place, kfp_server: FakeKfp, tmp_path: Path) -> Drill:
    """Watchers in subprocesses that find the store through the environment, as a user's would."""
    config = tmp_path / "team.yaml"
    config.write_text("data:\n  label: species\n")

    def write(name: str, text: str) -> None:
        remote.put(f"incoming/{name}", text.encode())

    with remote.conditional():
        yield Drill(remote.uri("incoming"), write, kfp_server, config, environment(), lease=3.0)


@pytest.mark.parametrize("seed", [3])
def test_every_snapshot_gets_exactly_one_run_through_random_uploads_and_kills(drill: Drill, seed: int) -> None:
    run_drill(drill, seed)
    print(f"seed {seed}: {drill.polls} watcher processes, kills {dict(drill.kills)}, "
          f"runs {dict(drill.runs_by_snapshot())}")
    assert sorted(drill.kills) and sum(drill.kills.values()) >= 2  # the drill did kill watchers


def test_two_watchers_at_once_start_one_run_per_snapshot(drill: Drill) -> None:
    two_at_once(drill)


def test_a_watcher_killed_at_each_point_of_the_submit_path_leaves_one_run_per_snapshot(drill: Drill) -> None:
    every_point(drill)
