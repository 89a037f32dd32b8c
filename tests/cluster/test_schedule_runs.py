"""tunepipe schedule and runs against a fake KFP server."""

from pathlib import Path

import pytest
from fake_kfp import FakeKfp

from pipelines.remote import ClusterError

pytestmark = pytest.mark.cluster


@pytest.fixture
def latest_version(kfp_server: FakeKfp, tiny_package: Path) -> tuple[str, str]:
    pipeline_id = kfp_server.add_pipeline("tunepipe")
    kfp_server.add_version(pipeline_id, "tunepipe", tiny_package.read_text())
    latest = kfp_server.add_version(pipeline_id, "second", tiny_package.read_text())
    return pipeline_id, latest["pipeline_version_id"]


def test_schedule_create_cron_defaults_to_one_at_a_time_without_catchup(
    kfp_server: FakeKfp, tunepipe, latest_version, capsys
) -> None:
    pipeline_id, version_id = latest_version
    assert tunepipe(
        "schedule", "create", "--host", kfp_server.url, "--cron", "0 0 3 * * *",
        "--param", "data_uri=gs://b/d.csv", "--service-account", "pipeline-runner",
    ) == 0

    (create,) = kfp_server.requests_to("POST", "/recurringruns")
    body = create.body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["pipeline_version_reference"] == {"pipeline_id": pipeline_id, "pipeline_version_id": version_id}
    assert body["runtime_config"]["parameters"] == {"data_uri": "gs://b/d.csv"}
    assert body["service_account"] == "pipeline-runner"
    assert body["display_name"] == "tunepipe cron 0 0 3 * * *"
    assert body["experiment_id"] == next(iter(kfp_server.experiments))
    (recurring_id,) = kfp_server.recurring_runs
    assert f"recurring run id  {recurring_id}" in capsys.readouterr().out


def test_schedule_create_interval_with_catchup(kfp_server: FakeKfp, tunepipe, latest_version) -> None:
    assert tunepipe(
        "schedule", "create", "--host", kfp_server.url, "--interval", "3600", "--catchup",
        "--max-concurrency", "2", "--schedule-name", "hourly", "--experiment", "hourly-exp",
    ) == 0
    (create,) = kfp_server.requests_to("POST", "/recurringruns")
    assert create.body["trigger"] == {"periodic_schedule": {"interval_second": 3600}}
    assert create.body["no_catchup"] is False
    assert create.body["max_concurrency"] == 2
    assert create.body["display_name"] == "hourly"
    (experiment,) = kfp_server.requests_to("POST", "/experiments")
    assert experiment.body["display_name"] == "hourly-exp"


def test_schedule_create_refuses_unix_cron_and_needs_a_trigger(kfp_server: FakeKfp, tunepipe) -> None:
    with pytest.raises(ClusterError, match=r"6, seconds first \(e.g. '0 0 3 \* \* \*'\)"):
        tunepipe("schedule", "create", "--host", kfp_server.url, "--cron", "0 3 * * *")
    with pytest.raises(SystemExit):
        tunepipe("schedule", "create", "--host", kfp_server.url)
    assert kfp_server.requests == []


def test_schedule_list_and_delete(kfp_server: FakeKfp, tunepipe, capsys) -> None:
    nightly = kfp_server.add_experiment("nightly")
    cron = kfp_server.add_recurring_run({
        "display_name": "tunepipe nightly", "experiment_id": nightly, "mode": "ENABLE",
        "trigger": {"cron_schedule": {"cron": "0 0 3 * * *"}}, "max_concurrency": 1, "no_catchup": True,
    })
    hourly = kfp_server.add_recurring_run({
        "display_name": "tunepipe hourly", "experiment_id": kfp_server.add_experiment("other"), "mode": "DISABLE",
        "trigger": {"periodic_schedule": {"interval_second": 3600}}, "max_concurrency": 1, "no_catchup": True,
    })

    assert tunepipe("schedule", "list", "--host", kfp_server.url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "TRIGGER", "CREATED"]
    rows = {line.split("  ")[0]: line for line in lines[1:]}
    assert set(rows) == {cron["recurring_run_id"], hourly["recurring_run_id"]}
    assert "tunepipe nightly" in rows[cron["recurring_run_id"]]
    assert "ENABLED" in rows[cron["recurring_run_id"]] and "cron 0 0 3 * * *" in rows[cron["recurring_run_id"]]
    assert "DISABLED" in rows[hourly["recurring_run_id"]] and "every 3600 s" in rows[hourly["recurring_run_id"]]
    assert "2024-05-01 00:" in rows[cron["recurring_run_id"]]

    assert tunepipe("schedule", "list", "--host", kfp_server.url, "--experiment", "nightly") == 0
    listing = kfp_server.requests_to("GET", "/recurringruns")[-1]
    assert listing.query["experiment_id"] == nightly
    assert [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()[1:]] == [cron["recurring_run_id"]]

    assert tunepipe("schedule", "delete", "--host", kfp_server.url, cron["recurring_run_id"]) == 0
    assert kfp_server.requests_to("DELETE", f"/recurringruns/{cron['recurring_run_id']}")
    assert set(kfp_server.recurring_runs) == {hourly["recurring_run_id"]}
    with pytest.raises(ClusterError, match=r"answered 404.*not found"):
        tunepipe("schedule", "delete", "--host", kfp_server.url, "recurring-missing")


def test_runs_lists_newest_first(kfp_server: FakeKfp, tunepipe, capsys) -> None:
    oldest, middle, newest = (kfp_server.add_run({"display_name": name}) for name in ("first", "second", "third"))
    oldest.update(state="SUCCEEDED", finished_at="2024-05-02T10:00:00Z")
    middle["state"] = "FAILED"
    newest["state"] = "RUNNING"

    assert tunepipe("runs", "--host", kfp_server.url, "--limit", "2") == 0

    (listing,) = kfp_server.requests_to("GET", "/runs")
    assert listing.query["sort_by"] == "created_at desc"
    assert listing.query["page_size"] == "2"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "CREATED", "FINISHED"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [newest["run_id"], "third", "RUNNING"],
        [middle["run_id"], "second", "FAILED"],
    ]
    assert lines[1].split()[-1] == "-"  # not finished

    assert tunepipe("runs", "--host", kfp_server.url) == 0
    assert "2024-05-02 10:00:00" in capsys.readouterr().out.splitlines()[3]


def test_runs_of_one_experiment(kfp_server: FakeKfp, tunepipe, capsys) -> None:
    nightly = kfp_server.add_experiment("nightly")
    kfp_server.add_run({"display_name": "elsewhere", "experiment_id": kfp_server.add_experiment("other")})
    mine = kfp_server.add_run({"display_name": "mine", "experiment_id": nightly})
    assert tunepipe("runs", "--host", kfp_server.url, "--experiment", "nightly") == 0
    assert kfp_server.requests_to("GET", "/runs")[0].query["experiment_id"] == nightly
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [mine["run_id"]]

    with pytest.raises(ClusterError, match="No experiment is found with name missing"):
        tunepipe("runs", "--host", kfp_server.url, "--experiment", "missing")


def test_schedule_create_latest_sends_no_version_id(
    kfp_server: FakeKfp, tunepipe, latest_version, capsys
) -> None:
    pipeline_id, version_id = latest_version
    assert tunepipe(
        "schedule", "create", "--host", kfp_server.url, "--cron", "0 0 3 * * *", "--latest",
        "--param", "seed=3", "--service-account", "pipeline-runner", "--pipeline-root", "gs://b/root",
        "--max-concurrency", "2", "--catchup",
    ) == 0
    (create,) = kfp_server.requests_to("POST", "/recurringruns")
    body = create.body
    assert body["pipeline_version_reference"] == {"pipeline_id": pipeline_id}  # the backend takes the newest
    assert body["runtime_config"] == {"parameters": {"seed": 3}, "pipeline_root": "gs://b/root"}
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert (body["mode"], body["max_concurrency"], body["no_catchup"]) == ("ENABLE", 2, False)
    assert body["service_account"] == "pipeline-runner"
    assert body["display_name"] == "tunepipe cron 0 0 3 * * *"
    assert f"the newest at each run (--latest; {version_id} today)" in capsys.readouterr().out


def test_schedule_create_latest_with_an_interval(kfp_server: FakeKfp, tunepipe, latest_version) -> None:
    assert tunepipe("schedule", "create", "--host", kfp_server.url, "--interval", "600", "--latest") == 0
    (create,) = kfp_server.requests_to("POST", "/recurringruns")
    assert create.body["trigger"] == {"periodic_schedule": {"interval_second": 600}}
    assert "pipeline_version_id" not in create.body["pipeline_version_reference"]


def test_schedule_create_latest_and_a_version_id_exclude_each_other(kfp_server: FakeKfp, tunepipe, capsys) -> None:
    with pytest.raises(SystemExit):
        tunepipe("schedule", "create", "--host", kfp_server.url, "--interval", "60", "--latest", "--version-id", "v1")
    assert "not allowed with argument" in capsys.readouterr().err
    assert kfp_server.requests == []
