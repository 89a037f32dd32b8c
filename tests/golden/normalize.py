"""Normalizes compiled pipeline YAML so golden comparisons ignore volatile fields.

The KFP SDK version and the image name change with releases and registries; the rest of
the compiled pipeline (DAG, parameters, defaults, component code) must not change silently.
"""

from typing import Any

import yaml

VOLATILE_KEYS = {"sdkVersion": "SDK_VERSION", "image": "IMAGE"}
# The golden file is compiled for a GKE GPU pool, so that GPU placement is visible in it.
GOLDEN_COMPILE_ARGS = ["--gpu-node-selector", "cloud.google.com/gke-accelerator=nvidia-tesla-t4"]


def _normalize(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: VOLATILE_KEYS[key] if key in VOLATILE_KEYS else _normalize(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_normalize(item) for item in node]
    return node


def normalized_documents(text: str) -> list[Any]:
    """The YAML documents of a compiled pipeline with volatile values replaced."""
    return [_normalize(document) for document in yaml.safe_load_all(text)]


def normalized_yaml(text: str) -> str:
    """The normalized documents serialized again, keys sorted, for diffs and the golden file."""
    return yaml.safe_dump_all(normalized_documents(text), sort_keys=True, width=120)
