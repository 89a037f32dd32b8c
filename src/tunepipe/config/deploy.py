"""Where a new champion is deployed: the optional deploy step after export."""

from __future__ import annotations

from pydantic import Field

from tunepipe.config.base import _Section

# Kubernetes object names: an InferenceService name is a DNS-1035 label, a namespace a DNS-1123 label.
_DNS_1035 = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_1123 = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class DeployConfig(_Section):
    """Deploying a new champion to a KServe InferenceService that runs ``tunepipe serve``.

    Attributes:
        enabled: Run the deploy step after a model is published (default false: serving is
            managed apart from training unless a team opts in; the pipeline then runs as before).
        inference_service: The InferenceService whose pinned version (its TUNEPIPE_SERVE_VERSION)
            becomes the new champion's (default ``tunepipe-serve``, as in k8s/serving).
        namespace: Its namespace; null (the default) means the namespace the step's own pod runs in.
    """

    enabled: bool = False
    inference_service: str = Field("tunepipe-serve", pattern=_DNS_1035)
    namespace: str | None = Field(None, pattern=_DNS_1123)
