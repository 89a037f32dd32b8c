"""The one Kubernetes client interface every step uses: objects as plain dicts, by kind and name.

:class:`ClusterApi` is what the job runner (:mod:`.runner`), the launchers (:mod:`.tuning`,
:mod:`.training`) and the deploy step call; :class:`KubernetesClusterApi` implements it over the
official ``kubernetes`` client with the pod's in-cluster service account, and the tests' fake
implements the same six calls. Objects go in and come out as the dicts of a manifest
(camelCase keys), whatever API group serves them (:data:`KINDS`).
"""

from __future__ import annotations

from typing import Any, Protocol


class ClusterApi(Protocol):
    """The Kubernetes calls tunepipe makes, each in one namespace."""

    def create(self, manifest: dict[str, Any]) -> None:
        """Creates the object ``manifest`` describes (its ``metadata.namespace``)."""
        ...

    def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object as a dict, or ``None`` when it does not exist."""
        ...

    def patch(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> None:
        """Applies a JSON merge patch to the object (a custom kind of :data:`KINDS`: what the deploy
        step patches; nothing patches a built-in kind)."""
        ...

    def delete(self, kind: str, name: str, namespace: str) -> None:
        """Deletes the object and, in the background, what it owns."""
        ...

    def pod_names(self, selector: str, namespace: str) -> list[str]:
        """Names of the pods matching the label ``selector``, oldest first."""
        ...

    def log_lines(self, name: str, namespace: str) -> list[str]:
        """A pod's log so far, each line prefixed with its RFC 3339 timestamp (empty while it starts)."""
        ...


# kind -> (API group, version, plural) of the custom objects, served by the CustomObjectsApi:
# Kubeflow Trainer's TrainJob (tests/k8s/schemas has its CRD) and KServe's InferenceService.
KINDS: dict[str, tuple[str, str, str]] = {
    "TrainJob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
    "InferenceService": ("serving.kserve.io", "v1beta1", "inferenceservices"),
}
# Kinds of the built-in API, by the typed client's method suffix.
BUILT_IN = {"Pod": ("core", "pod"), "Service": ("core", "service"), "Job": ("batch", "job")}


class KubernetesClusterApi:
    """:class:`ClusterApi` over the official ``kubernetes`` client, in-cluster service account."""

    def __init__(self) -> None:
        from kubernetes import client, config

        config.load_incluster_config()
        self.core, self.batch, self.custom = client.CoreV1Api(), client.BatchV1Api(), client.CustomObjectsApi()
        self.serializer = client.ApiClient()

    def _typed(self, verb: str, kind: str) -> Any:
        group, suffix = BUILT_IN[kind]
        return getattr(self.core if group == "core" else self.batch, f"{verb}_namespaced_{suffix}")

    def create(self, manifest: dict[str, Any]) -> None:
        namespace, kind = manifest["metadata"]["namespace"], manifest["kind"]
        if kind in KINDS:
            self.custom.create_namespaced_custom_object(*KINDS[kind][:2], namespace, KINDS[kind][2], manifest)
            return
        self._typed("create", kind)(namespace, manifest)

    def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            if kind in KINDS:
                group, version, plural = KINDS[kind]
                return dict(self.custom.get_namespaced_custom_object(group, version, namespace, plural, name))
            found = self._typed("read", kind)(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(self.serializer.sanitize_for_serialization(found))  # the manifest's camelCase keys

    def patch(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> None:
        # The client sends custom-object patches as JSON merge patches.
        group, version, plural = KINDS[kind]
        self.custom.patch_namespaced_custom_object(group, version, namespace, plural, name, body)

    def delete(self, kind: str, name: str, namespace: str) -> None:
        if kind in KINDS:
            group, version, plural = KINDS[kind]
            self.custom.delete_namespaced_custom_object(group, version, namespace, plural, name,
                                                        propagation_policy="Background")
            return
        self._typed("delete", kind)(name, namespace, propagation_policy="Background")

    def pod_names(self, selector: str, namespace: str) -> list[str]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [pod.metadata.name for pod in sorted(pods, key=lambda pod: pod.metadata.creation_timestamp)]

    def log_lines(self, name: str, namespace: str) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        try:
            text = self.core.read_namespaced_pod_log(name, namespace, timestamps=True)
        except ApiException as error:
            # 400/404: the container is still being created, or the pod just went. 5xx: the API
            # server could not get the log from the node's kubelet (unreachable, restarting, or a
            # node that serves no logs): the log is what the step prints, not what decides the
            # job, so a node that cannot serve it now must not end the work; the next poll retries.
            if error.status in (400, 404) or (error.status or 0) >= 500:
                return []
            raise
        return str(text).splitlines()
