"""Where tune and train keep state when the run names no tuner_root: found from KFP's output URIs."""

from __future__ import annotations

import logging

import pytest

from tunepipe.storage.state_root import STATE_FOLDER, pipeline_state_root, resolve_tuner_root

RUN = "5f2c1a0e-8b3d-4c6f-9a7e-0d1b2c3d4e5f"
SALT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.mark.parametrize("uri", [
    f"gs://bucket/kfp/tunepipe/{RUN}/tune/{SALT}/trials",  # KFP 2.4 and later: a random folder per attempt
    f"gs://bucket/kfp/tunepipe/{RUN}/tune/trials",  # KFP 2.0 to 2.3
    f"gs://bucket/kfp/tunepipe/{RUN}/tune/{SALT}/trials/",
])
def test_the_state_root_is_beside_the_runs_of_the_pipeline(uri: str) -> None:
    assert pipeline_state_root(uri) == f"gs://bucket/kfp/tunepipe/{STATE_FOLDER}"


def test_every_attempt_and_every_run_of_a_pipeline_share_one_state_root() -> None:
    other_run, other_salt = RUN.replace("5f2c", "77aa"), SALT.replace("0a1b", "99cc")
    roots = {pipeline_state_root(f"s3://b/root/tunepipe/{run}/{task}/{salt}/{output}")
             for run in (RUN, other_run) for salt in (SALT, other_salt)
             for task, output in (("tune", "trials"), ("train", "model"))}
    assert roots == {f"s3://b/root/tunepipe/{STATE_FOLDER}"}


@pytest.mark.parametrize("uri", [
    f"minio://mlpipeline/v2/artifacts/tunepipe/{RUN}/tune/{SALT}/trials",  # KFP's own MinIO: not a tunepipe store
    "/tmp/local_outputs/tunepipe-2026-11-29-10-00-00-000000/tune/trials",  # kfp.local: no run uuid
    "gs://bucket/root/123456/tunepipe-20261129/tune_-42/trials",  # Vertex AI's layout
    "gs://bucket/trials",
])
def test_outputs_not_laid_out_by_kfp_in_a_store_tunepipe_writes_give_no_root(uri: str) -> None:
    assert pipeline_state_root(uri) == ""


def test_a_configured_tuner_root_wins(caplog: pytest.LogCaptureFixture) -> None:
    uri = f"gs://bucket/kfp/tunepipe/{RUN}/tune/{SALT}/trials"
    assert resolve_tuner_root("gs://mine/tuning", uri, "tune") == "gs://mine/tuning"
    assert not caplog.records


def test_the_fallback_is_said_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert resolve_tuner_root("", f"gs://b/kfp/tunepipe/{RUN}/train/{SALT}/model", "train").endswith(STATE_FOLDER)
        assert resolve_tuner_root("", f"minio://mlpipeline/tunepipe/{RUN}/tune/{SALT}/trials", "tune") == ""
    assert "so a retried step resumes" in caplog.records[0].message
    assert caplog.records[1].levelno == logging.WARNING and "set tuner_root" in caplog.records[1].message
