"""The errors of the cluster commands, in a module both :mod:`pipelines.remote` (the commands,
no kfp) and :mod:`pipelines.remote_kfp` (the kfp client) import, so neither imports the other
for it."""

from tunepipe.errors import TunepipeError


class ClusterError(TunepipeError):
    """Kubeflow Pipelines is unreachable, refused a request, or lacks what a command names."""
