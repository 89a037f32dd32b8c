"""The cluster commands against Kubeflow Pipelines in a kind cluster, as a user runs them.

upload (compiled without GPUs: kind has none; and without the tasks' security context, which the
kind cluster's KFP 2.14 predates), submit --wait with a tiny budget, runs, and a
schedule created, listed and deleted. Skipped without TUNEPIPE_KFP_HOST (see k8s/README.md).
"""

from __future__ import annotations

import json
import os

import pytest

from pipelines.cli import main

pytestmark = pytest.mark.kind
NAME = "tunepipe-kind-cli"
TINY = {"tune_max_epochs": 2, "train_max_epochs": 3, "evaluation.cv_folds": 0}


@pytest.fixture(scope="module")
def host() -> str:
    value = os.environ.get("TUNEPIPE_KFP_HOST")
    if not value:
        pytest.skip("TUNEPIPE_KFP_HOST is not set: the kind tier needs Kubeflow Pipelines on a kind cluster "
                    "(set it up as k8s/README.md says, then TUNEPIPE_KFP_HOST=http://localhost:8080)")
    return value


COMPILE_FOR_KIND = ["--no-gpu", "--no-security-context"]


def params() -> list[str]:
    return [argument for key, value in TINY.items() for argument in ("--param", f"{key}={json.dumps(value)}")]


def test_upload_submit_wait_and_list(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upload", "--host", host, "--name", NAME, *COMPILE_FOR_KIND]) == 0
    assert main(["upload", "--host", host, "--name", NAME, *COMPILE_FOR_KIND]) == 0  # a second version
    submitted = main(["submit", "--host", host, "--name", NAME, "--service-account", "tunepipe-runner",
                      *params(), "--wait", "--timeout", "1800"])
    assert submitted == 0, capsys.readouterr().out[-3000:]
    assert main(["runs", "--host", host, "--limit", "5"]) == 0
    assert "SUCCEEDED" in capsys.readouterr().out


def test_schedule_create_list_delete(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["upload", "--host", host, "--name", NAME, *COMPILE_FOR_KIND])
    capsys.readouterr()
    assert main(["schedule", "create", "--host", host, "--name", NAME, "--cron", "0 0 3 * * *", *params()]) == 0
    created = capsys.readouterr().out
    schedule_id = next(line.split()[-1] for line in created.splitlines() if "recurring run id" in line)
    assert main(["schedule", "list", "--host", host]) == 0
    assert schedule_id in capsys.readouterr().out
    assert main(["schedule", "delete", "--host", host, schedule_id]) == 0
    main(["schedule", "list", "--host", host])
    assert schedule_id not in capsys.readouterr().out
