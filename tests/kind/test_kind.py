"""The compiled pipeline runs to the end on Kubeflow Pipelines in a kind cluster.

Needs the cluster from `bash k8s/kind/create-cluster.sh`, a port-forward
(`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`) and TUNEPIPE_KFP_HOST
(e.g. http://localhost:8080); without it every test here is skipped. See k8s/README.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kfp
import pytest
import yaml
from kfp import compiler

from pipelines.pipeline import create_pipeline

pytestmark = pytest.mark.kind

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "k8s" / "overlays" / "kind" / "settings-configmap.yaml"
STEPS = ("fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export")
TIMEOUT_S = 30 * 60
ARGUMENTS = {
    # The dataset shipped inside the image, so every pod has it.
    "data_uri": "sample://penguins",
    "label": "species",
    # Empty: publish into the run's own outcome artifact, which KFP stores in the cluster's MinIO.
    "export_root": "",
    "model_name": "penguins",
    "tune_max_epochs": 2,  # tiny budget: this tier proves the plumbing, not accuracy
    "train_max_epochs": 3,
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Compiles the pipeline, submits it like a user would and waits for it to end."""
    host = os.environ.get("TUNEPIPE_KFP_HOST")
    if not host:
        pytest.skip("TUNEPIPE_KFP_HOST is not set: the kind tier needs Kubeflow Pipelines on a kind cluster "
                    "(set it up as k8s/README.md says, then TUNEPIPE_KFP_HOST=http://localhost:8080)")
    package = tmp_path_factory.mktemp("kind") / "pipeline.yaml"
    # Image tunepipe:<version>, loaded into kind; no GPU placement (kind has no GPUs); no task security
    # context (KFP 2.14.3 on kind predates that kfp-kubernetes field, see k8s/README.md).
    compiler.Compiler().compile(create_pipeline(placement=None, security_context=False), str(package))
    settings = yaml.safe_load(SETTINGS.read_text())["data"]
    client = kfp.Client(host=host)
    submitted = client.create_run_from_pipeline_package(
        str(package),
        arguments=ARGUMENTS,
        run_name="tunepipe-kind-test",
        experiment_name="tunepipe-kind-tests",
        pipeline_root=settings["pipeline_root"],
        enable_caching=False,  # every step must really run in a pod
        service_account="tunepipe-runner",
    )
    client.wait_for_run_completion(submitted.run_id, timeout=TIMEOUT_S)
    return client.get_run(submitted.run_id)


def tasks_named(run: Any, name: str) -> list[Any]:
    return [task for task in (run.run_details.task_details or []) if task.display_name == name]


def test_run_succeeds(finished_run: Any) -> None:
    run = finished_run
    assert run.state == "SUCCEEDED", f"run {run.run_id} ended {run.state}: {run.error}"


@pytest.mark.parametrize("step", STEPS)
def test_every_step_ran_in_the_cluster(finished_run: Any, step: str) -> None:
    states = {task.state for task in tasks_named(finished_run, step)}
    assert "SUCCEEDED" in states, f"step {step} of run {finished_run.run_id}: states {states or 'none'}"


def test_evaluate_produced_metrics(finished_run: Any) -> None:
    outputs: dict[str, Any] = {}
    for task in tasks_named(finished_run, "evaluate"):
        outputs.update(task.outputs or {})
    for name in ("metrics", "confusion_matrix", "evaluation"):
        assert name in outputs and outputs[name].artifact_ids, f"evaluate recorded no {name} artifact: {outputs}"
