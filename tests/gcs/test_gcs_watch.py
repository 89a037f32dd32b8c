"""``tunepipe watch`` on a ``gs://`` location, its records in the GCS emulator (with Cloud
Storage's generation preconditions, tests/gcs/preconditions.py), runs on the recording fake
Kubeflow Pipelines server: the randomized SIGKILL drill, two watchers at once, and the
preconditions themselves."""


import sys
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from preconditions import enforced

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
from fake_kfp import FakeKfp
from watch_scenarios import Drill, environment, every_point, run_drill, two_at_once

from tunepipe.storage.gcs import GcsObjectStore
from tunepipe.storage.objectstore import PreconditionFailed

pytestmark = pytest.mark.gcs


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
def drill(client, bucket_name: str, kfp_server: FakeKfp, emulator: str, tmp_path: Path) -> Drill:
    config = tmp_path / "team.yaml"
    config.write_text("data:\n  label: species\n")
    bucket = client.bucket(bucket_name)

    def write(name: str, text: str) -> None:
        bucket.blob(f"incoming/{name}").upload_from_string(text)

    env = environment(STORAGE_EMULATOR_HOST=emulator, GOOGLE_CLOUD_PROJECT="tunepipe-test")
    with enforced():
        yield Drill(f"gs://{bucket_name}/incoming", write, kfp_server, config, env, lease=3.0)


def test_the_emulator_enforces_create_only_and_replace_only_writes(client, bucket_name: str) -> None:
    store = GcsObjectStore(bucket_name, client)
    with enforced():
        first = store.write_if_generation("record.json", b"a", 0)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("record.json", b"b", 0)
        second = store.write_if_generation("record.json", b"c", first)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("record.json", b"d", first)
        assert store.read("record.json") == (b"c", second)
    with pytest.raises(gexc.GoogleAPICallError, match="412"), enforced():  # the raw answer, as GCS gives it
        client.bucket(bucket_name).blob("record.json").upload_from_string(b"e", if_generation_match=0)


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
