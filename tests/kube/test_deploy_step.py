"""The deploy step (src/tunepipe/deploy_step.py, through the one cluster API and job runner) patches
k8s/serving's InferenceService with the step's own identity: `tunepipe-runner` bound to the Role
`tunepipe-deployer` of k8s/serving, against KServe's own CRD. KServe's controller is not installed,
so no pods roll out; the stored object is what it would act on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_cluster import (  # pytest puts this folder on sys.path
    IMAGE,
    RUNNER,
    Cluster,
    in_pod,
    render,
    restricted_pod,
    service_account_token,
    wait_until,
)

from tunepipe import artifacts
from tunepipe.config import DeployConfig
from tunepipe.deploy_step import deploy_step
from tunepipe.execution.k8s.api import KubernetesClusterApi
from tunepipe.identity import SERVE_VERSION_ENV

pytestmark = pytest.mark.kube

SERVICE = "tunepipe-serve"


@pytest.fixture
def serving(cluster: Cluster, upstream_crds: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """k8s/base and k8s/serving in a fresh namespace; a token of the deploy step's pod."""
    ns = f"tpk-deploy-{uuid.uuid4().hex[:6]}"
    cluster.apply(render("base", ns))
    serving = render("serving", ns)
    for doc in serving:
        if doc["kind"] == "RoleBinding":
            # kustomize leaves a subject's namespace alone when the ServiceAccount is not among the
            # kustomization's own objects: k8s/serving names `tunepipe` and its comment tells a user
            # who moves it to write the new namespace, as done here
            assert doc["subjects"] == [{"kind": "ServiceAccount", "name": RUNNER, "namespace": "tunepipe"}]
            doc["subjects"][0]["namespace"] = ns
    cluster.apply(serving)
    wait_until(lambda: cluster.exists("serviceaccount", RUNNER, "-n", ns), 30, f"serviceaccount {ns}/{RUNNER}")
    cluster.apply([restricted_pod("deploy-step", ns, IMAGE, RUNNER, placement=cluster.simulated_placement())])
    pod = cluster.get("pod", "deploy-step", "-n", ns)
    yield ns, service_account_token(cluster.admin(), ns, RUNNER, pod)
    cluster.delete_namespace(ns)


def _served_version(cluster: Cluster, ns: str) -> list[str]:
    isvc = cluster.get("inferenceservice", SERVICE, "-n", ns)
    return [env.get("value") for container in isvc["spec"]["predictor"]["containers"]
            for env in container.get("env", []) if env["name"] == SERVE_VERSION_ENV]


def test_the_deploy_step_patches_the_inference_service_with_the_deployer_role(
    cluster: Cluster, serving: tuple[str, str], tmp_path: Path
) -> None:
    ns, token = serving
    assert _served_version(cluster, ns) == ["1"]
    outcome = {artifacts.META_PUBLISHED: True, artifacts.META_CHAMPION_VERSION: 7}
    settings = DeployConfig(enabled=True, inference_service=SERVICE, namespace=ns)
    with in_pod(cluster, token, ns, tmp_path / "serviceaccount"):
        first = deploy_step(outcome, settings, "gs://tunepipe-kube-tests/models", api=KubernetesClusterApi)
        again = deploy_step(outcome, settings, "gs://tunepipe-kube-tests/models", api=KubernetesClusterApi)
    assert first["deployed"] is True, first
    assert _served_version(cluster, ns) == ["7"]
    assert again["deployed"] is False and "already serves version 7" in again["reason"]


@pytest.mark.parametrize("verb", ["delete", "create", "list"])
def test_inference_service_calls_outside_the_deployer_role_are_refused(
    cluster: Cluster, serving: tuple[str, str], verb: str, tmp_path: Path
) -> None:
    from kubernetes import client

    ns, token = serving
    isvc = cluster.get("inferenceservice", SERVICE, "-n", ns)
    with in_pod(cluster, token, ns, tmp_path / "serviceaccount"):
        custom = client.CustomObjectsApi()
        args = ("serving.kserve.io", "v1beta1", ns, "inferenceservices")
        with pytest.raises(client.ApiException) as refused:
            if verb == "delete":
                custom.delete_namespaced_custom_object(*args, SERVICE)
            elif verb == "create":
                copy = {"apiVersion": isvc["apiVersion"], "kind": isvc["kind"], "metadata": {"name": "copy"},
                        "spec": isvc["spec"]}
                custom.create_namespaced_custom_object(*args, copy)
            else:
                custom.list_namespaced_custom_object(*args)
    assert refused.value.status == 403
