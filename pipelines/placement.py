"""Where the GPU steps (tune, train) run on a cluster, chosen at compile time."""

import argparse
import re
from dataclasses import dataclass

from pipelines.resources import add_resource_options
from tunepipe.errors import ConfigError

# The accelerator resource Kubernetes' NVIDIA device plugin exposes.
NVIDIA_GPU = "nvidia.com/gpu"
# REPO[:TAG]@sha256:<64 hex>: an image pinned by content. Compiled as given, it makes the KFP cache key
# (which covers the image string) follow the image's content rather than a movable tag.
DIGEST_REFERENCE = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")


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


def image_reference(text: str) -> str:
    """An image option's value, unchanged; refuses an empty one or a malformed ``@`` digest.

    Raises:
        argparse.ArgumentTypeError: ``text`` is empty or holds ``@`` without being
            ``REPO[:TAG]@sha256:<64 lowercase hex digits>``.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("image must not be empty")
    if "@" in text and not DIGEST_REFERENCE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"image {text!r} is not a digest reference: expected REPO@sha256:<64 lowercase hex digits>"
        )
    return text


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the GPU image and node pool of the tune and train steps, task security and resources."""
    parser.add_argument(
        "--gpu-image", type=image_reference,
        help="image of the tune and train steps, best pinned as REPO@sha256:<digest> (default: --image)",
    )
    parser.add_argument(
        "--gpu-node-selector", metavar="KEY=VALUE",
        help="node label of the GPU pool, e.g. cloud.google.com/gke-accelerator=nvidia-tesla-t4 (default: none)",
    )
    parser.add_argument(
        "--gpu-toleration", default=NVIDIA_GPU, metavar="KEY",
        help=f"taint key of the GPU nodes, tolerated with Exists/NoSchedule (default: {NVIDIA_GPU}; '' for none)",
    )
    parser.add_argument("--no-gpu", action="store_true", help="request no GPU (clusters without GPUs, e.g. kind)")
    parser.add_argument(
        "--no-security-context", action="store_true",
        help="leave the tasks' security context (non-root uid 10001) out, for KFP backends older than 2.17 "
             "(e.g. kind's KFP 2.14), which refuse it; the /tmp emptyDir stays",
    )
    add_resource_options(parser)


def placement_from(args: argparse.Namespace) -> GpuPlacement | None:
    """The GPU placement the options describe; None with --no-gpu."""
    if args.no_gpu:
        return None
    try:
        selector = parse_node_selector(args.gpu_node_selector) if args.gpu_node_selector else None
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return GpuPlacement(node_selector=selector, toleration_key=args.gpu_toleration)
