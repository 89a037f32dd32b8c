"""The API server enforces what tunepipe relies on: Pod Security admission, service-account tokens
from the TokenRequest API, and RBAC that refuses an identity without grants."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kube_cluster import Cluster, restricted_pod, service_account_token, token_client  # this folder is on sys.path

import tunepipe

pytestmark = pytest.mark.kube

IMAGE = f"tunepipe:{tunepipe.__version__}"


def test_pod_security_admission_refuses_a_pod_that_breaks_the_restricted_standard(
    cluster: Cluster, namespace: Callable[[str], str]
) -> None:
    ns = namespace("pss")
    root = restricted_pod("root", ns, IMAGE, "default")
    del root["spec"]["securityContext"]  # no runAsNonRoot, no seccomp profile
    root["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    refused = cluster.create([root])
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    for rule in ("privileged", "allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile"):
        assert rule in refused.stderr, f"the refusal names no {rule}: {refused.stderr}"
    assert not cluster.exists("pod", "root", "-n", ns)
    # the same pod with the restricted settings is admitted
    compliant = restricted_pod("compliant", ns, IMAGE, "default", placement=cluster.simulated_placement())
    admitted = cluster.create([compliant])
    assert admitted.returncode == 0, admitted.stderr
    assert cluster.exists("pod", "compliant", "-n", ns)


def test_a_token_from_the_token_request_api_authenticates_as_its_service_account(
    cluster: Cluster, namespace: Callable[[str], str]
) -> None:
    from kubernetes import client

    ns = namespace("token")
    token = service_account_token(cluster.admin(), ns, "default")
    with token_client(cluster, token) as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert review.status.user_info.username == f"system:serviceaccount:{ns}:default"
        # RBAC: the default account has no grants, so reading pods, even in its own namespace, is refused
        with pytest.raises(client.ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_pod(ns)
        assert refused.value.status == 403
