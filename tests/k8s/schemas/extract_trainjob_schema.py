"""Re-creates trainjob-v1alpha1.schema.json from Kubeflow Trainer's TrainJob CRD.

Usage (from a kubeflow/trainer checkout; the committed file came from the commit named in README.md)::

    python tests/k8s/schemas/extract_trainjob_schema.py \\
        TRAINER/manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml \\
        tests/k8s/schemas/trainjob-v1alpha1.schema.json

Keeps the v1alpha1 ``openAPIV3Schema`` without ``status`` (the controller writes it) and without
descriptions, then closes every object that lists ``properties`` (``additionalProperties:
false``) unless the CRD preserves unknown fields there, as the InferenceService copy does: the
API server prunes unknown fields silently, and strict field validation refuses them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from extract_inferenceservice_schema import _clean


def extract(crd: dict[str, Any]) -> dict[str, Any]:
    """The closed v1alpha1 schema of a TrainJob CRD document, without status."""
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = version["schema"]["openAPIV3Schema"]
    schema["properties"].pop("status", None)
    schema["properties"]["metadata"] = {"type": "object"}  # checked by the Kubernetes ObjectMeta rules elsewhere
    return _clean(schema)


if __name__ == "__main__":
    crd = yaml.safe_load(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(extract(crd), separators=(",", ":"), sort_keys=True) + "\n")
