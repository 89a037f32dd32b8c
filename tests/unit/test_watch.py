"""The watcher on a local folder: complete snapshots only, one run each, takeover of a dead
watcher's claim, the champion's schema guard. Runs are recorded, not started (the cluster and
gcs tiers start them on the fake Kubeflow Pipelines server, SIGKILLs included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from watch_helpers import PENGUIN_FEATURES, RecordingLauncher, penguin_rows, write_local_champion

from tunepipe.watching.guard import Guard
from tunepipe.watching.records import CLAIMED, LocalRecords, Record, record_name
from tunepipe.watching.snapshots import Completeness, list_snapshots
from tunepipe.watching.watcher import Watcher, run_name_for

pytestmark = pytest.mark.unit


def _snapshot(root: Path, name: str, parts: int = 2, marker: bool = True, part_offset: int = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        (folder / f"part-{part:04d}.csv").write_text(penguin_rows(part + part_offset))
    if marker:
        (folder / "_SUCCESS").write_text("")
    return folder


def _watcher(root: Path, launcher: RecordingLauncher, **options) -> Watcher:
    return Watcher(str(root), LocalRecords(root / "_tunepipe_watch"), launcher, **options)


def test_snapshots_are_the_visible_sub_folders_and_only_marked_ones_are_complete(tmp_path) -> None:
    _snapshot(tmp_path, "2026-12-03")
    _snapshot(tmp_path, "2026-12-04", marker=False)
    _snapshot(tmp_path, "_staging")  # hidden, as Spark's _temporary
    (tmp_path / "loose.csv").write_text("a,b\n1,2\n")  # a file directly under the location is no snapshot
    snapshots = list_snapshots(str(tmp_path))
    assert [s.name for s in snapshots] == ["2026-12-03", "2026-12-04"]
    completeness = Completeness()
    assert [completeness.complete(s) for s in snapshots] == [True, False]
    assert list_snapshots(str(tmp_path / "not-yet")) == []


def test_without_markers_a_snapshot_is_complete_once_its_listing_stays_quiet(tmp_path) -> None:
    now = [0.0]
    completeness = Completeness(marker=None, quiet_seconds=60, clock=lambda: now[0])
    folder = _snapshot(tmp_path, "export-1", parts=1, marker=False)
    assert not completeness.complete(list_snapshots(str(tmp_path))[0])
    now[0] = 50
    (folder / "part-0001.csv").write_text(penguin_rows(3))  # the upload goes on: the quiet period restarts
    assert not completeness.complete(list_snapshots(str(tmp_path))[0])
    now[0] = 100
    assert not completeness.complete(list_snapshots(str(tmp_path))[0])
    assert "unchanged for 50 s of 60 s" in completeness.waiting_for(list_snapshots(str(tmp_path))[0])
    now[0] = 111
    assert completeness.complete(list_snapshots(str(tmp_path))[0])


def test_each_complete_snapshot_starts_exactly_one_run_and_new_data_another(tmp_path) -> None:
    launcher = RecordingLauncher()
    watcher = _watcher(tmp_path, launcher)
    _snapshot(tmp_path, "day-1")
    _snapshot(tmp_path, "day-2", marker=False, part_offset=5)
    first = watcher.poll()
    assert [(o.snapshot.rsplit("/", 1)[1], o.action) for o in first] == [("day-1", "started"), ("day-2", "waiting")]
    assert launcher.launches == [f"{tmp_path}/day-1"]
    (tmp_path / "day-2" / "_SUCCESS").write_text("")
    watcher.poll()
    watcher.poll()
    assert launcher.launches == [f"{tmp_path}/day-1", f"{tmp_path}/day-2"]
    _snapshot(tmp_path, "day-1", parts=3)  # day-1 rewritten with more data: new data, a new run
    watcher.poll()
    assert len(launcher.launches) == 3
    again = _watcher(tmp_path, launcher)  # a restarted watcher starts nothing already started
    assert {o.action for o in again.poll()} == {"known"}
    record = json.loads(next((tmp_path / "_tunepipe_watch" / "snapshots").glob("*.json")).read_text())
    assert record["state"] == "started" and record["run_id"].startswith("run-tunepipe-watch-sha256-")


def test_skip_existing_records_the_complete_snapshots_as_skipped_and_runs_only_later_ones(tmp_path) -> None:
    launcher = RecordingLauncher()
    _snapshot(tmp_path, "old-complete")
    _snapshot(tmp_path, "old-half", marker=False, part_offset=3)
    watcher = _watcher(tmp_path, launcher)
    skipped = watcher.skip_existing()
    assert [(o.snapshot.rsplit("/", 1)[1], o.action) for o in skipped] == [("old-complete", "skipped")]
    assert _watcher(tmp_path, launcher).skip_existing() == []  # recorded once: a second start skips nothing more
    (tmp_path / "old-half" / "_SUCCESS").write_text("")  # completed after the start: it is new data
    _snapshot(tmp_path, "new", part_offset=6)
    actions = {o.snapshot.rsplit("/", 1)[1]: o.action for o in watcher.poll()}
    assert actions == {"old-complete": "known", "old-half": "started", "new": "started"}
    assert sorted(launcher.launches) == [f"{tmp_path}/new", f"{tmp_path}/old-half"]
    records = (tmp_path / "_tunepipe_watch" / "snapshots").glob("*.json")
    states = sorted(json.loads(path.read_text())["state"] for path in records)
    assert states == ["skipped", "started", "started"]


def test_two_watchers_on_one_folder_start_one_run_per_snapshot(tmp_path) -> None:
    launcher = RecordingLauncher()
    watchers = [_watcher(tmp_path, launcher, identity=name) for name in ("a", "b")]
    for day in range(4):
        _snapshot(tmp_path, f"day-{day}", part_offset=day)
        for watcher in watchers[day % 2:] + watchers[:day % 2]:
            watcher.poll()
    assert sorted(launcher.launches) == [f"{tmp_path}/day-{day}" for day in range(4)]


def test_a_claim_left_by_a_dead_watcher_is_taken_over_or_linked_to_the_run_it_started(tmp_path) -> None:
    launcher = RecordingLauncher()
    watcher = _watcher(tmp_path, launcher)
    folder = _snapshot(tmp_path, "day-1")
    fingerprint = watcher._fingerprint(list_snapshots(str(tmp_path))[0])
    record = Record(fingerprint, str(folder), run_name_for("tunepipe-watch", fingerprint), CLAIMED, "dead/1", 0.0)
    records = tmp_path / "_tunepipe_watch" / "snapshots"
    records.mkdir(parents=True)
    (records / record_name(fingerprint)).write_bytes(record.to_bytes())
    launcher.runs[record.run_name] = str(folder)  # it died after submitting, before recording the run
    assert [o.action for o in watcher.poll()] == ["linked"] and launcher.launches == []
    (records / record_name(fingerprint)).write_bytes(record.to_bytes())  # and now it died before submitting
    launcher.runs.clear()
    assert [o.action for o in _watcher(tmp_path, launcher).poll()] == ["started"]
    (records / record_name(fingerprint)).write_bytes(b'{"fingerp')  # torn by a kill in the middle of the write
    launcher.runs.clear()
    assert [o.action for o in _watcher(tmp_path, launcher).poll()] == ["started"]
    assert launcher.launches == [str(folder), str(folder)]


def test_a_snapshot_that_drifted_fatally_from_the_champion_starts_no_run_and_the_watch_goes_on(tmp_path) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    write_local_champion(models, "penguins", "species", "classification", PENGUIN_FEATURES)
    launcher = RecordingLauncher()
    watcher = _watcher(data, launcher, guard=Guard(str(models), "penguins"))
    _snapshot(data, "good")
    bad = _snapshot(data, "renamed-column")
    for part in bad.glob("part-*.csv"):
        part.write_text(part.read_text().replace("bill_length_mm", "bill_len"))
    no_label = _snapshot(data, "no-label")
    for part in no_label.glob("part-*.csv"):
        part.write_text(part.read_text().replace("species", "kind"))
    outcomes = {o.snapshot.rsplit("/", 1)[1]: o for o in watcher.poll()}
    assert outcomes["good"].action == "started" and launcher.launches == [str(data / "good")]
    assert outcomes["renamed-column"].action == "refused"
    assert "'bill_length_mm' of the baseline schema is missing" in outcomes["renamed-column"].detail
    assert outcomes["no-label"].action == "refused" and "predicts 'species'" in outcomes["no-label"].detail
    watcher.poll()
    assert launcher.launches == [str(data / "good")]  # refused once, for good
    assert {o.action for o in _watcher(data, launcher, guard=watcher.guard).poll()} == {"known"}


def test_a_label_that_turned_to_text_under_a_regression_champion_is_refused(tmp_path) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    features = {name: spec for name, spec in PENGUIN_FEATURES.items() if name != "body_mass_g"}
    write_local_champion(models, "mass", "body_mass_g", "regression", {**features, "species": {"type": "categorical"}})
    folder = _snapshot(data, "text-label")
    for part in folder.glob("part-*.csv"):
        part.write_text(part.read_text().replace(",3750.0,", ",heavy,"))
    launcher = RecordingLauncher()
    (outcome,) = _watcher(data, launcher, guard=Guard(str(models), "mass")).poll()
    assert outcome.action == "refused" and "'body_mass_g' changed type from numeric to categorical" in outcome.detail
    assert launcher.launches == []
