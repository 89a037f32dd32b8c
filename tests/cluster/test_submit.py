"""tunepipe submit against a fake KFP server: parameters, experiment, caching, --wait."""

from pathlib import Path

import pytest
import yaml
from fake_kfp import FakeKfp

from pipelines.remote import ClusterError
from tunepipe.config import load_config, pipeline_arguments

pytestmark = pytest.mark.cluster


@pytest.fixture
def uploaded(kfp_server: FakeKfp, tiny_package: Path) -> tuple[str, str, str]:
    """Pipeline tunepipe with two versions; (pipeline id, older version id, latest version id)."""
    pipeline_id = kfp_server.add_pipeline("tunepipe")
    older = kfp_server.add_version(pipeline_id, "tunepipe", tiny_package.read_text())
    latest = kfp_server.add_version(pipeline_id, "0.1.0-b", tiny_package.read_text())
    return pipeline_id, older["pipeline_version_id"], latest["pipeline_version_id"]


def test_submit_sends_config_and_param_overrides(
    kfp_server: FakeKfp, tunepipe, uploaded, tmp_path: Path, capsys
) -> None:
    pipeline_id, _, latest = uploaded
    config = tmp_path / "run.yaml"
    config.write_text("seed: 7\ndata:\n  uri: gs://bucket/data.csv\n  label: y\ntuning:\n  max_epochs: 3\n")
    assert tunepipe(
        "submit", "--host", kfp_server.url, "--config", str(config),
        "--param", "seed=11", "--param", "model_name=churn", "--param", 'thresholds={"accuracy": 0.9}',
        "--param", "not_a_config_key=1.5", "--service-account", "pipeline-runner", "--run-name", "nightly-1",
    ) == 0

    (experiment,) = kfp_server.requests_to("POST", "/experiments")
    assert experiment.body["display_name"] == "tunepipe"
    (create,) = kfp_server.requests_to("POST", "/runs")
    expected = pipeline_arguments(load_config(config))
    expected.update(seed=11, model_name="churn", thresholds={"accuracy": 0.9}, not_a_config_key=1.5)
    assert create.body["runtime_config"]["parameters"] == expected
    assert expected["tune_max_epochs"] == 3 and expected["data_uri"] == "gs://bucket/data.csv"
    assert create.body["service_account"] == "pipeline-runner"
    assert create.body["display_name"] == "nightly-1"
    assert create.body["pipeline_version_reference"] == {"pipeline_id": pipeline_id, "pipeline_version_id": latest}
    assert create.body["experiment_id"] == next(iter(kfp_server.experiments))
    assert "pipeline_spec" not in create.body  # caching as compiled: the version is referenced, not inlined

    (run_id,) = kfp_server.runs
    out = capsys.readouterr().out
    assert f"run id            {run_id}" in out
    assert f"{kfp_server.url}/#/runs/details/{run_id}" in out


def test_submit_only_params_without_config(kfp_server: FakeKfp, tunepipe, uploaded) -> None:
    assert tunepipe("submit", "--host", kfp_server.url, "--param", "data_uri=gs://b/d.csv", "--param", "label=y") == 0
    (create,) = kfp_server.requests_to("POST", "/runs")
    assert create.body["runtime_config"]["parameters"] == {"data_uri": "gs://b/d.csv", "label": "y"}
    assert "service_account" not in create.body


def test_a_dotted_param_sets_one_key_of_a_section(kfp_server: FakeKfp, tunepipe, uploaded, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("training:\n  patience: 4\n  min_delta: 0.5\n")
    assert tunepipe("submit", "--host", kfp_server.url, "--config", str(config),
                    "--param", "training.patience=5", "--param", "evaluation.cv_folds=0") == 0
    (create,) = kfp_server.requests_to("POST", "/runs")
    parameters = create.body["runtime_config"]["parameters"]
    assert parameters["training"]["patience"] == 5 and parameters["training"]["min_delta"] == 0.5  # file kept
    assert parameters["evaluation"] == {**pipeline_arguments(load_config(config))["evaluation"], "cv_folds": 0}


def test_submit_reuses_the_experiment_and_runs_the_given_version(
    kfp_server: FakeKfp, tunepipe, uploaded, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _, older, _ = uploaded
    experiment_id = kfp_server.add_experiment("nightly")
    monkeypatch.setenv("KF_PIPELINES_UI_ENDPOINT", "https://kfp.example.com")
    assert tunepipe("submit", "--host", kfp_server.url, "--experiment", "nightly", "--version-id", older) == 0

    assert not kfp_server.requests_to("POST", "/experiments")
    (create,) = kfp_server.requests_to("POST", "/runs")
    assert create.body["experiment_id"] == experiment_id
    assert create.body["pipeline_version_reference"]["pipeline_version_id"] == older
    (run_id,) = kfp_server.runs
    assert f"https://kfp.example.com/#/runs/details/{run_id}" in capsys.readouterr().out


def test_no_cache_submits_the_spec_inline_with_caching_off(
    kfp_server: FakeKfp, tunepipe, tiny_platform_package: Path
) -> None:
    pipeline_id = kfp_server.add_pipeline("tunepipe")
    version = kfp_server.add_version(pipeline_id, "tunepipe", tiny_platform_package.read_text())
    compiled_tasks = next(yaml.safe_load_all(tiny_platform_package.read_text()))["root"]["dag"]["tasks"]
    assert all(task["cachingOptions"].get("enableCache") for task in compiled_tasks.values())  # on as compiled

    assert tunepipe("submit", "--host", kfp_server.url, "--no-cache") == 0

    assert kfp_server.requests_to("GET", f"/pipelines/{pipeline_id}/versions/{version['pipeline_version_id']}")
    (create,) = kfp_server.requests_to("POST", "/runs")
    assert "pipeline_version_reference" not in create.body
    spec = create.body["pipeline_spec"]
    tasks = spec["pipeline_spec"]["root"]["dag"]["tasks"]
    assert set(tasks) == set(compiled_tasks)
    assert not any(task.get("cachingOptions", {}).get("enableCache") for task in tasks.values())
    assert spec["platform_spec"] == kfp_server.version_spec(version["pipeline_version_id"])["platform_spec"]
    assert "nodeSelector" in str(spec["platform_spec"])


def test_submit_without_an_uploaded_pipeline_is_refused(kfp_server: FakeKfp, tunepipe) -> None:
    with pytest.raises(ClusterError, match=r"no pipeline named 'tunepipe'.*tunepipe upload"):
        tunepipe("submit", "--host", kfp_server.url)
    assert not kfp_server.requests_to("POST", "/runs")


def _task(name: str, state: str, message: str = "") -> dict:
    task = {"task_id": f"task-{name}", "display_name": name, "state": state}
    if message:
        task["error"] = {"code": 2, "message": message}
    return task


def test_wait_follows_the_run_to_success(kfp_server: FakeKfp, tunepipe, uploaded, capsys) -> None:
    kfp_server.run_script = [
        {"state": "PENDING"},
        {"state": "PENDING"},
        {"state": "RUNNING", "run_details": {"task_details": [_task("train", "RUNNING")]}},
        {"state": "RUNNING", "run_details": {"task_details": [_task("train", "RUNNING")]}},
        {"state": "SUCCEEDED", "run_details": {"task_details": [_task("train", "SUCCEEDED")]}},
    ]
    assert tunepipe("submit", "--host", kfp_server.url, "--wait", "--poll", "0.01") == 0

    (run_id,) = kfp_server.runs
    lines = [line.split("s  ", 1)[1] for line in capsys.readouterr().out.splitlines() if "s  " in line]
    assert lines == [
        f"run {run_id}: PENDING",
        "task train: RUNNING",
        f"run {run_id}: RUNNING",
        "task train: SUCCEEDED",
        f"run {run_id}: SUCCEEDED",
    ]
    assert len(kfp_server.requests_to("GET", f"/runs/{run_id}")) == 5


def test_wait_exits_1_when_the_run_fails(kfp_server: FakeKfp, tunepipe, uploaded, capsys) -> None:
    kfp_server.run_script = [
        {"state": "RUNNING"},
        {"state": "FAILED", "error": {"code": 2, "message": "task train failed"},
         "run_details": {"task_details": [_task("ingest", "SUCCEEDED"), _task("train", "FAILED", "OOMKilled")]}},
    ]
    assert tunepipe("submit", "--host", kfp_server.url, "--wait", "--poll", "0.01") == 1

    captured = capsys.readouterr()
    (run_id,) = kfp_server.runs
    assert f"run {run_id}: FAILED" in captured.out
    assert "task train: FAILED (OOMKilled)" in captured.out
    assert f"run {run_id} ended FAILED: task train failed; failed tasks: train" in captured.err


def test_wait_exits_1_on_timeout(kfp_server: FakeKfp, tunepipe, uploaded, capsys) -> None:
    kfp_server.run_script = [{"state": "RUNNING"}]
    assert tunepipe("submit", "--host", kfp_server.url, "--wait", "--poll", "0.05", "--timeout", "0.3") == 1
    (run_id,) = kfp_server.runs
    assert f"run {run_id} still RUNNING after 0.3 s" in capsys.readouterr().err


def test_wait_exits_1_when_the_run_is_canceled(kfp_server: FakeKfp, tunepipe, uploaded, capsys) -> None:
    kfp_server.run_script = [{"state": "CANCELED"}]
    assert tunepipe("submit", "--host", kfp_server.url, "--wait", "--poll", "0.01") == 1
    assert "ended CANCELED" in capsys.readouterr().err


def test_bad_param_and_bad_config_are_refused_before_connecting(
    kfp_server: FakeKfp, tunepipe, tmp_path: Path
) -> None:
    from tunepipe.errors import ConfigError

    with pytest.raises(SystemExit) as exit_info:
        tunepipe("submit", "--host", kfp_server.url, "--param", "seed")
    assert exit_info.value.code == 2
    with pytest.raises(ClusterError, match="--poll must be more than 0"):
        tunepipe("submit", "--host", kfp_server.url, "--wait", "--poll", "0")
    config = tmp_path / "bad.yaml"
    config.write_text("tuning:\n  max_epochs: 1\n")
    with pytest.raises(ConfigError, match=r"tuning\.max_epochs"):
        tunepipe("submit", "--host", kfp_server.url, "--config", str(config))
    assert kfp_server.requests == []
