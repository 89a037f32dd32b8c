"""``tunepipe watch`` against the recording fake Kubeflow Pipelines server, records in a local
folder (``flock``): the randomized SIGKILL drill, two watchers at once, the submit's parameters,
a refused request, and the liveness endpoint. The same drill against the GCS emulator and moto's
S3 server is in tests/stores/test_store_watch.py."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest
from fake_kfp import FakeKfp
from watch_helpers import penguin_rows
from watch_scenarios import Drill, environment, every_point, run_drill, two_at_once

from pipelines.errors import ClusterError
from tunepipe.errors import ConfigError
from tunepipe.watching.records import CLAIMED

pytestmark = pytest.mark.cluster


@pytest.fixture
def pipeline(kfp_server: FakeKfp, tiny_package: Path) -> str:
    pipeline_id = kfp_server.add_pipeline("tunepipe")
    kfp_server.add_version(pipeline_id, "tunepipe", tiny_package.read_text())
    return pipeline_id


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text("data:\n  label: species\ntuning:\n  max_epochs: 3\n")
    return path


def _local_drill(tmp_path: Path, kfp_server: FakeKfp, config: Path) -> Drill:
    location = tmp_path / "data"

    def write(name: str, text: str) -> None:
        path = location / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return Drill(str(location), write, kfp_server, config, environment())


@pytest.mark.parametrize("seed", [1, 2])
def test_every_snapshot_gets_exactly_one_run_through_random_uploads_and_kills(
        tmp_path, kfp_server, pipeline, config, seed) -> None:
    drill = _local_drill(tmp_path, kfp_server, config)
    run_drill(drill, seed)
    print(f"seed {seed}: {drill.polls} watcher processes, kills {dict(drill.kills)}, "
          f"runs {dict(drill.runs_by_snapshot())}")
    records = [json.loads(p.read_text()) for p in (tmp_path / "data" / "_tunepipe_watch" / "snapshots").glob("*.json")]
    assert {r["state"] for r in records} == {"started"}
    assert sorted(r["run_id"] for r in records) == sorted(kfp_server.runs)  # each record links its run


def test_two_watchers_at_once_start_one_run_per_snapshot(tmp_path, kfp_server, pipeline, config) -> None:
    two_at_once(_local_drill(tmp_path, kfp_server, config))


def test_the_run_gets_the_snapshot_the_config_and_a_name_from_the_fingerprint(
        tmp_path, kfp_server, pipeline, config, tunepipe) -> None:
    drill = _local_drill(tmp_path, kfp_server, config)
    drill.write("2026-12-04/part-0.csv", penguin_rows(0))
    drill.write("2026-12-04/_SUCCESS", "")
    assert tunepipe("watch", str(tmp_path / "data"), "--once", "--host", kfp_server.url, "--config", str(config),
                    "--param", "seed=11", "--experiment", "retrain") == 0
    (create,) = kfp_server.requests_to("POST", "/runs")
    parameters = create.body["runtime_config"]["parameters"]
    assert parameters["data_uri"] == f"{tmp_path}/data/2026-12-04" and parameters["seed"] == 11
    assert parameters["tune_max_epochs"] == 3 and parameters["label"] == "species"
    assert create.body["display_name"].startswith("tunepipe-watch-sha256-")
    assert kfp_server.experiments[create.body["experiment_id"]]["display_name"] == "retrain"


def test_a_claim_is_not_submitted_twice_while_its_watcher_is_alive(tmp_path, kfp_server, pipeline, config) -> None:
    drill = _local_drill(tmp_path, kfp_server, config)
    drill.write("a/part-0.csv", penguin_rows(0))
    drill.write("a/_SUCCESS", "")
    drill.watch("after-claim")  # killed holding a fresh claim: the flock is free again, so the next one takes over
    record = json.loads(next((tmp_path / "data" / "_tunepipe_watch" / "snapshots").glob("*.json")).read_text())
    assert record["state"] == CLAIMED and not kfp_server.runs
    drill.watch()
    assert len(kfp_server.runs) == 1


def test_a_refused_request_stops_the_watcher_with_one_error(tmp_path, kfp_server, config, tunepipe) -> None:
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "part-0.csv").write_text(penguin_rows(0))
    (tmp_path / "data" / "a" / "_SUCCESS").write_text("")
    with pytest.raises(ClusterError, match="no pipeline named 'tunepipe'"):  # nothing uploaded: 404 is no outage
        tunepipe("watch", str(tmp_path / "data"), "--once", "--host", kfp_server.url, "--config", str(config))
    with pytest.raises(ConfigError, match=r"data\.label"):
        tunepipe("watch", str(tmp_path / "data"), "--once", "--host", kfp_server.url)


def test_the_liveness_endpoint_answers_while_polls_succeed(tmp_path, kfp_server, pipeline, config) -> None:
    from pipelines.watch import Health
    from tunepipe.watching.records import LocalRecords
    from tunepipe.watching.watcher import Watcher

    watcher = Watcher(str(tmp_path), LocalRecords(tmp_path / "_tunepipe_watch"), launcher=None)
    health = Health(watcher, 0, stale_seconds=0.3)
    url = f"http://127.0.0.1:{health.port}/healthz"
    try:
        assert json.loads(urllib.request.urlopen(url).read())["alive"] is True  # starting up
        threading.Event().wait(0.4)
        with pytest.raises(urllib.error.HTTPError, match="503"):
            urllib.request.urlopen(url)
        watcher.poll()  # an empty folder: a good poll
        assert urllib.request.urlopen(url).status == 200
    finally:
        health.close()


def test_an_experiment_created_by_another_watcher_meanwhile_is_used_not_refused(
        tmp_path, kfp_server, pipeline, config, tunepipe) -> None:
    existing = kfp_server.add_experiment("tunepipe")
    kfp_server.hide_next_experiment_listing = True  # kfp.Client's lookup misses it, so its create gets a 409
    (tmp_path / "data").mkdir()
    assert tunepipe("watch", str(tmp_path / "data"), "--once", "--host", kfp_server.url, "--config", str(config)) == 0
    assert len(kfp_server.requests_to("POST", "/experiments")) == 1 and list(kfp_server.experiments) == [existing]


def test_a_watcher_killed_at_each_point_of_the_submit_path_leaves_one_run_per_snapshot(
        tmp_path, kfp_server, pipeline, config) -> None:
    every_point(_local_drill(tmp_path, kfp_server, config))
