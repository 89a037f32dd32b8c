"""Names and identities that several layers need, declared once.

Nothing here imports anything: the core, the components, the pipelines and the CLI all read
these, and the CLI must not import kfp to know them.
"""

# The pipeline's name: compiled into the YAML, and the default pipeline and experiment name of
# `tunepipe upload`, `submit` and `schedule`.
PIPELINE_NAME = "tunepipe"
# The non-root user docker/Dockerfile creates (uid and gid). Pipeline tasks, the distributed
# tuner's pods and kfp.local's DockerRunner run as it; tests/unit/test_identity.py checks the
# Dockerfile and the manifests under k8s/ agree.
IMAGE_UID = 10001
# The environment variable that pins `tunepipe serve` to one published version (unset: it follows
# CHAMPION). The serving manifests set it and the pipeline's deploy step rewrites it.
SERVE_VERSION_ENV = "TUNEPIPE_SERVE_VERSION"
# Where a pod finds its own namespace (the service-account mount); the distributed tuner and the
# deploy step act in it.
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
