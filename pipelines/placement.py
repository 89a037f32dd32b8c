"""Where the GPU steps (tune, train) run on a cluster, chosen at compile time."""

from dataclasses import dataclass

# The accelerator resource Kubernetes' NVIDIA device plugin exposes.
NVIDIA_GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class GpuPlacement:
    """GPU request, node selector and toleration of the tune and train tasks.

    Attributes:
        resource: Accelerator resource name requested (default ``nvidia.com/gpu``).
        node_selector: ``(label key, value)`` of the GPU node pool, e.g. GKE's
            ``("cloud.google.com/gke-accelerator", "nvidia-tesla-t4")``; ``None`` for none.
        toleration_key: Taint key of the GPU nodes tolerated with ``Exists`` (default
            ``nvidia.com/gpu``, the taint GKE puts on GPU node pools); empty for none.
        toleration_effect: The taint's effect (default ``NoSchedule``).
    """

    resource: str = NVIDIA_GPU
    node_selector: tuple[str, str] | None = None
    toleration_key: str = NVIDIA_GPU
    toleration_effect: str = "NoSchedule"


def parse_node_selector(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as a node-selector pair; raises ValueError naming the text otherwise."""
    key, separator, value = text.partition("=")
    if not separator or not key or not value:
        raise ValueError(f"node selector must be KEY=VALUE, got {text!r}")
    return key, value
