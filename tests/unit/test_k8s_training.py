"""The multi-worker training launcher (a Kubeflow Trainer TrainJob), through the one job runner,
against the tests' fake cluster API."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest
from fake_cluster import FakeCluster  # tests/ is on sys.path (conftest.py)

from tunepipe.config import Placement, TrainingConfig
from tunepipe.errors import ConfigError, TrainingError
from tunepipe.execution.k8s.pods import StepPod
from tunepipe.execution.k8s.runner import JobRunner, OwnerPod
from tunepipe.execution.k8s.training import TrainingLaunch, check_location, training_job
from tunepipe.execution.training import OnTrainJob, training_runner
from tunepipe.reports.modelcard import _trained_model_lines

pytestmark = pytest.mark.unit
OWNER = OwnerPod("run-abc-train", "1234-uid")
LAUNCH = TrainingLaunch("tunepipe-train-test", "ns", StepPod("img:1", 0, owner=OWNER), 2, ["--seed", "0"])
DONE = {"conditions": [{"type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "jobs completed"}]}
FAILED = {"conditions": [{"type": "Failed", "status": "True", "reason": "JobsFailed", "message": "node-1 exited 1"}]}
RUNNING: dict[str, Any] = {}


def cluster(states: list[dict[str, Any]], **kwargs: Any) -> FakeCluster:
    """The TrainJob's status and process 0's log, one step per poll; the pod appears from the 2nd look."""

    def log(poll: int) -> list[str]:
        lines = [f"2026-12-04T10:00:0{i}.000000000Z line {i}" for i in range(poll + 1)]
        failure = ["2026-12-04T10:00:09.000000000Z Traceback ...",
                   "2026-12-04T10:00:09.500000000Z RuntimeError: gloo lost a peer"]
        return [*lines, *failure] if states[-1] is FAILED and poll >= 3 else lines

    return FakeCluster({"TrainJob": states}, pods=lambda poll: [f"{LAUNCH.name}-node-0-0-abcde"] if poll else [],
                       logs=log, **kwargs)


def launch_and_wait(api: FakeCluster, **kwargs: Any) -> None:
    JobRunner(api, OWNER, TrainingError, **kwargs).run(training_job(LAUNCH))


def test_success_creates_the_trainjob_streams_each_log_line_once_and_deletes_it(caplog) -> None:
    api = cluster([RUNNING, RUNNING, RUNNING, DONE])
    with caplog.at_level("INFO", logger="tunepipe.execution.k8s.runner"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.calls[0] == ("create", "TrainJob", "tunepipe-train-test", "ns")
    assert api.calls[-1] == ("delete", "TrainJob", "tunepipe-train-test", "ns") and api.alive == set()
    streamed = [r.getMessage() for r in caplog.records if "] line" in r.getMessage()]
    assert streamed == [f"train: [tunepipe-train-test] line {i}" for i in range(4)]  # each line once, in order
    selector = "jobset.sigs.k8s.io/jobset-name=tunepipe-train-test,batch.kubernetes.io/job-completion-index=0"
    assert ("list", "Pod", selector, "ns") in api.calls


def test_the_trainjob_is_owned_by_the_steps_pod() -> None:
    api = cluster([DONE])
    launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.created[0]["spec"]["activeDeadlineSeconds"] > 0
    assert api.created[0]["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "run-abc-train", "uid": "1234-uid", "blockOwnerDeletion": False}]


def test_a_failed_trainjob_raises_one_error_naming_it_its_reason_and_the_last_log_lines() -> None:
    api = cluster([RUNNING, RUNNING, FAILED])
    with pytest.raises(TrainingError, match=r"TrainJob tunepipe-train-test failed \(JobsFailed: node-1 exited 1\)"
                                            r"[\s\S]*RuntimeError: gloo lost a peer"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()


def test_an_exception_while_waiting_still_deletes_the_trainjob() -> None:
    api = cluster([RUNNING], fail_on_poll=2)
    with pytest.raises(ConnectionError):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()


def test_a_failed_create_deletes_nothing() -> None:
    api = cluster([RUNNING], refuse={"create": PermissionError("trainjobs.trainer.kubeflow.org is forbidden")})
    with pytest.raises(PermissionError):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert not [c for c in api.calls if c[0] == "delete"]


def test_timeout_raises_and_deletes() -> None:
    api = cluster([RUNNING])
    with pytest.raises(TrainingError, match="did not finish within"):
        launch_and_wait(api, poll_s=0.01, timeout_s=0.05)
    assert api.alive == set()


def test_sigterm_from_a_cancelled_run_deletes_the_trainjob() -> None:
    class Cancelled(FakeCluster):
        def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
            if self.polls == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends when the run is cancelled
            return super().read(kind, name, namespace)

    api = Cancelled({"TrainJob": [RUNNING]})
    with pytest.raises(TrainingError, match="SIGTERM"):
        launch_and_wait(api, poll_s=0.01, timeout_s=30)
    assert api.alive == set()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("location", ["/data/tuner", "runs/tuner", ""])
def test_a_local_tuner_root_is_refused_naming_the_setting(location) -> None:
    with pytest.raises(ConfigError, match=r"training.placement cluster \(2 workers\) .* set tuner_root to gs:// or s3"):
        check_location(location, 2)


def test_both_object_stores_are_accepted() -> None:
    check_location("gs://bucket/tuner", 2)
    check_location("s3://bucket/tuner", 2)


def test_training_stays_in_the_step_by_default_and_a_cluster_needs_two_or_more_pods() -> None:
    assert TrainingConfig().placement == Placement(where="auto", workers=0)
    four = TrainingConfig(placement=Placement(where="cluster", workers=4))
    assert training_runner(four) == OnTrainJob(4) and training_runner(four).replicas.count == 4
    for workers in (0, 1):
        with pytest.raises(ValueError, match="where cluster needs workers 2 or more"):
            TrainingConfig(placement=Placement(where="cluster", workers=workers))


def test_the_old_keys_still_mean_what_they_meant() -> None:
    assert TrainingConfig(workers=4, replicas=1).placement == Placement(where="cluster", workers=4)
    with pytest.raises(ValueError, match="choose one way to spread"):
        TrainingConfig(workers=2, replicas=2)
    with pytest.raises(ValueError, match=r"training\.workers"):
        TrainingConfig(workers=0)


def test_the_model_card_says_the_training_ran_on_worker_pods() -> None:
    trained = {"kind": "single", "members": 1, "epochs": 12, "rows": 300, "training_devices": {
        "replicas": 4, "devices": "workers", "global_batch": 64, "batch_per_replica": 16,
        "learning_rate": 2e-2, "tuned_learning_rate": 1e-2}}
    text = " ".join(_trained_model_lines(json.loads(json.dumps(trained))))
    assert "4 worker pods" in text and "TrainJob" in text and "global batch 64 (16 per worker)" in text


def test_an_image_without_jax_is_refused_before_anything_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from tunepipe.config import SearchSpace
    from tunepipe.execution.k8s import training as k8s_training

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "jax" else real(name, *rest))
    api = FakeCluster()
    with pytest.raises(ConfigError, match="no JAX"):
        k8s_training.train_on_cluster({}, "best", TrainingConfig(placement=Placement(where="cluster", workers=2)),
                                      SearchSpace(), 0, "gs://b/t", 2, api=api)
    assert api.calls == []  # refused before anything was asked of the cluster
