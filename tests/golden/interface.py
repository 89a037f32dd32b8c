"""A compiled pipeline's interface: the golden file without the embedded component code and the
components' input and output descriptions.

What remains is what runs and what the Kubeflow UI and clients rely on: parameters with their
types and defaults, tasks and their edges, artifact names and types, conditions, caching,
retries, resources, images and placement. Two compiled pipelines with equal interfaces differ
only in the code KFP embeds in each executor and in the descriptions that code's docstrings give.

    .venv/bin/python tests/golden/interface.py OLD.yaml NEW.yaml

prints ``identical`` or a unified diff of the two interfaces, and exits 0 or 1.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

# Per executor: the embedded source (``command``) and how it is called (``args``).
EMBEDDED = ("command", "args")


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_descriptions(value) for key, value in node.items() if key != "description"}
    if isinstance(node, list):
        return [_without_descriptions(item) for item in node]
    return node


def interface(text: str) -> list[Any]:
    """The YAML documents of a compiled pipeline without executor code and component descriptions."""
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        for executor in (document.get("deploymentSpec", {}).get("executors") or {}).values():
            for key in EMBEDDED:
                executor.get("container", {}).pop(key, None)
        if "components" in document:
            document["components"] = _without_descriptions(document["components"])
    return documents


def interface_diff(old: str, new: str) -> str:
    """A unified diff of two compiled pipelines' interfaces; empty when they are equal."""
    before, after = (yaml.safe_dump_all(interface(text), sort_keys=True, width=120) for text in (old, new))
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "old", "new"))


if __name__ == "__main__":
    difference = interface_diff(Path(sys.argv[1]).read_text(), Path(sys.argv[2]).read_text())
    print(difference or "identical")
    sys.exit(1 if difference else 0)
