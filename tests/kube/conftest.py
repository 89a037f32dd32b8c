"""The kube tier: tunepipe's manifests, launchers and Roles against a real Kubernetes API server.

Needs TUNEPIPE_KUBECONFIG naming a kubeconfig: the one `make cluster-up` prints (a control plane
built here from the Go module proxy, nodes simulated by kwok) or a user's kind cluster's. KUBECONFIG
alone is never read, so a stray setting cannot point these tests at a production cluster. Without
the variable every test here skips; with CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kube_cluster import (  # pytest puts this folder on sys.path
    CLUSTER_SCRIPT,
    IMAGE,
    RUNNER,
    Cluster,
    Step,
    render,
    restricted_pod,
    service_account_token,
    wait_until,
)

ENV = "TUNEPIPE_KUBECONFIG"
# The upstream CRDs the tier needs (k8s/cluster/cluster.sh crds installs those missing, at pinned versions).
CRDS = (
    "trainjobs.trainer.kubeflow.org", "trainingruntimes.trainer.kubeflow.org",
    "clustertrainingruntimes.trainer.kubeflow.org",
    "inferenceservices.serving.kserve.io", "servingruntimes.serving.kserve.io",
    "clusterservingruntimes.serving.kserve.io",
    "workflows.argoproj.io", "workflowtemplates.argoproj.io", "cronworkflows.argoproj.io",
    "workflowtaskresults.argoproj.io",
    "scheduledworkflows.kubeflow.org", "viewers.kubeflow.org",
    "pipelines.pipelines.kubeflow.org", "pipelineversions.pipelines.kubeflow.org",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the kube tier must run in CI; .ci/run brings the cluster up)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    value = os.environ.get(ENV)
    if not value:
        _unavailable(f"{ENV} is not set: the kube tier needs a real Kubernetes API server. Bring one up with "
                     f"`make cluster-up` and run `{ENV}=runs/cluster/admin.kubeconfig .venv/bin/python -m pytest "
                     "-m kube`, or name your kind cluster's kubeconfig (k8s/README.md, Local Kubernetes cluster)")
    if shutil.which("kubectl") is None:
        _unavailable("kubectl is not on PATH: the kube tier drives the cluster with it")
    found = Cluster(Path(value).expanduser().resolve())
    if not found.kubeconfig.is_file():
        pytest.fail(f"{ENV}={value}: no such file (is the cluster up? `make cluster-up` prints the path)")
    ready = found.kubectl("get", "--raw", "/readyz", check=False, timeout=20)
    if ready.returncode != 0:
        pytest.fail(f"the API server of {found.kubeconfig} ({found.server}) is not ready: {ready.stderr.strip()} "
                    "(`make cluster-up` starts ours; `bash k8s/cluster/cluster.sh status` says what runs)")
    return found


@pytest.fixture(scope="session")
def upstream_crds(cluster: Cluster) -> tuple[str, ...]:
    """Kubeflow Trainer's, KServe's, Argo Workflows' and KFP's CRDs, installed from their own manifests.

    `cluster.sh crds` installs those the cluster lacks at the versions pinned there (from the
    projects' Go modules on the module proxy) and leaves existing ones alone (a kind cluster with
    KFP already has Argo's and KFP's).
    """
    missing = [name for name in CRDS if not cluster.exists("crd", name)]
    if missing:
        done = subprocess.run(["bash", str(CLUSTER_SCRIPT), "crds"], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})
        assert done.returncode == 0, f"cluster.sh crds failed:\n{done.stdout}\n{done.stderr}"
    for name in CRDS:
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    return CRDS


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[Callable[[str], str]]:
    """Makes namespaces that enforce the restricted standard; deletes them after the test."""
    made: list[str] = []

    def make(purpose: str) -> str:
        made.append(cluster.create_namespace(purpose))
        return made[-1]

    yield make
    for name in made:
        cluster.delete_namespace(name)


@pytest.fixture(scope="module")
def runner_namespace(cluster: Cluster) -> Iterator[str]:
    """k8s/base applied into a fresh namespace: tunepipe-runner, the Role tunepipe-tuner and its binding."""
    ns = f"tpk-steps-{uuid.uuid4().hex[:6]}"
    cluster.apply(render("base", ns))
    wait_until(lambda: cluster.exists("serviceaccount", RUNNER, "-n", ns), 30, f"serviceaccount {ns}/{RUNNER}")
    yield ns
    cluster.delete_namespace(ns)


@pytest.fixture
def step(cluster: Cluster, runner_namespace: str, tmp_path: Path) -> Step:
    """A pod standing in for the pipeline step (tunepipe-runner, restricted), and a token bound to it.

    It is placed on a kwok node where the cluster has one, and so are the pods the launchers make
    for it (they inherit its node selector and tolerations): these tests need pods admitted and
    scheduled, not running. The real node's tests (test_real_node_*.py) place their own.
    """
    name = f"step-{uuid.uuid4().hex[:6]}"
    cluster.apply([restricted_pod(name, runner_namespace, IMAGE, RUNNER, {"tunepipe/test": "step"},
                                  cluster.simulated_placement())])
    pod = cluster.get("pod", name, "-n", runner_namespace)
    token = service_account_token(cluster.admin(), runner_namespace, RUNNER, pod)
    return Step(runner_namespace, pod, token, tmp_path / "serviceaccount")
