"""The image's user id and the pipeline's name are declared once, in tunepipe.identity; the files
that cannot import it (the Dockerfile, the manifests) are checked against it here."""

import re
from pathlib import Path

import pytest

from tunepipe.identity import IMAGE_UID, PIPELINE_NAME

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_dockerfile_creates_and_runs_as_the_declared_user() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(rf"groupadd --gid {IMAGE_UID} ", dockerfile)
    assert re.search(rf"useradd --uid {IMAGE_UID} --gid {IMAGE_UID} ", dockerfile)
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", dockerfile, flags=re.M)


def test_every_run_as_user_in_the_manifests_is_the_declared_user() -> None:
    # TensorFlow Serving's image is not ours: it runs as KServe's runtime uid (k8s/serving, checked there).
    ours = [path for path in (ROOT / "k8s").rglob("*.yaml") if path.name != "inferenceservice-tfserving.yaml"]
    found = [(str(path.relative_to(ROOT)), int(value)) for path in ours
             for value in re.findall(r"runAs(?:User|Group): (\d+)", path.read_text())]
    assert found, "the checker found no runAsUser at all"
    assert {value for _, value in found} == {IMAGE_UID}, found


def test_the_cli_and_the_compiled_pipeline_share_one_name() -> None:
    from pipelines.pipeline import create_pipeline
    from pipelines.remote import DEFAULT_EXPERIMENT, DEFAULT_PIPELINE

    assert DEFAULT_PIPELINE == DEFAULT_EXPERIMENT == PIPELINE_NAME
    assert create_pipeline().name == PIPELINE_NAME
