"""The upstream CRDs tunepipe's objects and Kubeflow Pipelines need are installed from the projects'
own manifests (k8s/cluster/cluster.sh pins Kubeflow Trainer, KServe, Argo Workflows and KFP) and
serve the API versions tunepipe's code and manifests use."""

from __future__ import annotations

import pytest
from kube_cluster import Cluster  # pytest puts this folder on sys.path

from tunepipe.execution.k8s.api import KINDS
from tunepipe.execution.k8s.training import RUNTIME, TRAINER_GROUP, TRAINER_VERSION

KSERVE_GROUP, KSERVE_VERSION, _ = KINDS["InferenceService"]

pytestmark = pytest.mark.kube

# CRD -> the version tunepipe (or KFP 2.14, for Argo's and KFP's own) uses
USED = {
    f"trainjobs.{TRAINER_GROUP}": TRAINER_VERSION,
    f"clustertrainingruntimes.{TRAINER_GROUP}": TRAINER_VERSION,
    f"inferenceservices.{KSERVE_GROUP}": KSERVE_VERSION,
    "workflows.argoproj.io": "v1alpha1",
    "scheduledworkflows.kubeflow.org": "v1beta1",
    "pipelines.pipelines.kubeflow.org": "v2beta1",
}


def test_every_crd_is_established(cluster: Cluster, upstream_crds: tuple[str, ...]) -> None:
    for name in upstream_crds:
        crd = cluster.get("crd", name)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)


@pytest.mark.parametrize("crd", USED)
def test_the_crd_serves_the_version_in_use(cluster: Cluster, upstream_crds: tuple[str, ...], crd: str) -> None:
    served = {v["name"] for v in cluster.get("crd", crd)["spec"]["versions"] if v["served"]}
    assert USED[crd] in served, (crd, served)


def test_trainers_jax_runtime_that_trainjobs_name_exists(cluster: Cluster, upstream_crds: tuple[str, ...]) -> None:
    runtime = cluster.get("clustertrainingruntime", RUNTIME)
    jobs = [job["name"] for job in runtime["spec"]["template"]["spec"]["replicatedJobs"]]
    assert "node" in jobs, jobs
