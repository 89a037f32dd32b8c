"""Re-creates inferenceservice-v1beta1.schema.json from KServe's InferenceService CRD.

Usage (from a kserve checkout; the committed file came from the commit named in README.md)::

    python tests/k8s/schemas/extract_inferenceservice_schema.py \
        KSERVE/config/crd/full/serving.kserve.io_inferenceservices.yaml \
        tests/k8s/schemas/inferenceservice-v1beta1.schema.json

The CRD is about 2 MB; tunepipe's manifests use only the predictor, so the copy keeps the
v1beta1 ``openAPIV3Schema`` with ``spec.predictor`` alone (no transformer, explainer, status,
nor the model formats tunepipe does not use) and no descriptions. It then closes every object
that lists ``properties`` (``additionalProperties: false``) unless the CRD preserves unknown
fields there: the API server prunes unknown fields silently, and ``kubectl apply`` with strict
field validation refuses them; the test wants that refusal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

KEPT_FORMATS = {"tensorflow", "model"}
DROPPED_FORMATS = {"huggingface", "lightgbm", "onnx", "paddle", "pmml", "pytorch", "sklearn", "triton", "xgboost"}


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned = {key: _clean(value) for key, value in node.items() if key != "description"}
    if "properties" in cleaned and not cleaned.get("x-kubernetes-preserve-unknown-fields"):
        cleaned.setdefault("additionalProperties", False)
    return cleaned


def extract(crd: dict[str, Any]) -> dict[str, Any]:
    """The pruned, closed v1beta1 schema of an InferenceService CRD document."""
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = version["schema"]["openAPIV3Schema"]
    schema["properties"].pop("status")
    spec = schema["properties"]["spec"]
    spec["properties"] = {"predictor": spec["properties"]["predictor"]}
    predictor = spec["properties"]["predictor"]["properties"]
    for name in DROPPED_FORMATS:
        predictor.pop(name)
    schema["properties"]["metadata"] = {"type": "object"}  # checked by the Kubernetes ObjectMeta rules elsewhere
    return _clean(schema)


def main(source: str, target: str) -> None:
    crd = yaml.safe_load(Path(source).read_text())
    Path(target).write_text(json.dumps(extract(crd), separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
