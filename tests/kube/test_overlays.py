"""Every kustomization under k8s/ applies server-side to a real API server, and the pods its
workloads create are admitted by the Pod Security admission plugin under the restricted standard.

Each target goes into a fresh namespace that enforces `restricted` (kustomize moves it there, as a
user's `namespace:` line would), so the tier can run on a cluster that already runs tunepipe. The
API server validates every field strictly (unknown fields are errors; the InferenceServices against
KServe's own CRD schema) and would refuse a pod that breaks the standard: the controllers' pods
exist, and no FailedCreate event says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kube_cluster import Cluster, assert_contains, render, wait_until  # pytest puts this folder on sys.path

pytestmark = pytest.mark.kube

# target -> what must be applied into the same namespace first (the run identity lives in base)
TARGETS: dict[str, tuple[str, ...]] = {
    "base": (),
    "overlays/kind": (),
    "overlays/gke-gpu": (),
    "overlays/multi-user": (),
    "watch": ("base",),
    "serving": ("base",),
}
WORKLOADS = ("Job", "Deployment")


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _pods_of(cluster: Cluster, ns: str, kind: str, name: str) -> list[dict[str, Any]]:
    """Pods a Job or a Deployment (through its ReplicaSet) created."""
    owners = {name} if kind == "Job" else {
        rs["metadata"]["name"] for rs in cluster.get("replicasets", "-n", ns)["items"]
        if any(o["name"] == name for o in rs["metadata"].get("ownerReferences", []))}
    return [pod for pod in cluster.get("pods", "-n", ns)["items"]
            if any(o["name"] in owners for o in pod["metadata"].get("ownerReferences", []))]


@pytest.mark.parametrize("target", TARGETS)
def test_applies_server_side_and_its_pods_are_admitted(
    cluster: Cluster, namespace: Callable[[str], str], upstream_crds: tuple[str, ...], target: str
) -> None:
    ns = namespace(target.split("/")[-1])
    for first in TARGETS[target]:
        cluster.apply(render(first, ns))
    documents = render(target, ns)
    applied = cluster.apply(documents)
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr
    for doc in documents:
        assert doc["metadata"].get("namespace", ns) == ns or doc["kind"] == "Namespace"
        stored = cluster.get(doc["kind"], doc["metadata"]["name"], "-n", ns)
        assert stored["metadata"]["uid"], _key(doc)
    for doc in (d for d in documents if d["kind"] in WORKLOADS):
        kind, name = _key(doc)
        pods = wait_until(lambda kind=kind, name=name: _pods_of(cluster, ns, kind, name), 60,
                          f"a pod of {kind} {ns}/{name} (refused by admission?)")
        assert all(p["spec"]["serviceAccountName"] == doc["spec"]["template"]["spec"]["serviceAccountName"]
                   for p in pods)
    refusals = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "reason=FailedCreate",
                               "-o", "jsonpath={.items[*].message}").stdout
    assert not refusals, refusals


def test_the_inference_services_keep_every_field(
    cluster: Cluster, namespace: Callable[[str], str], upstream_crds: tuple[str, ...]
) -> None:
    """KServe's structural schema would prune a field it does not know; nothing we send is dropped."""
    ns = namespace("isvc")
    cluster.apply(render("base", ns))
    documents = [d for d in render("serving", ns) if d["kind"] == "InferenceService"]
    assert len(documents) == 2
    cluster.apply(documents)
    for doc in documents:
        stored = cluster.get("inferenceservice", doc["metadata"]["name"], "-n", ns)
        assert_contains(stored["spec"], doc["spec"], f"InferenceService {doc['metadata']['name']}.spec")
