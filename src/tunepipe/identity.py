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
