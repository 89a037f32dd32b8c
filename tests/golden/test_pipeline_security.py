"""Every task of the compiled pipeline carries what kfp-kubernetes can say about least privilege,
and the compiled YAML holds no credentials."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from credential_checks import SECRET_TEXT, credential_findings  # tests/ is on sys.path (conftest.py)
from kfp import compiler, dsl

from pipelines.pipeline import SCRATCH_PATH, create_pipeline
from pipelines.placement import GpuPlacement
from tunepipe.identity import IMAGE_UID

pytestmark = pytest.mark.golden
DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"
# validate, fingerprint, ingest, preprocess, tune, train, evaluate, export, deploy (optional), record refusal
TASKS = 10
NON_ROOT = {"runAsUser": str(IMAGE_UID), "runAsGroup": str(IMAGE_UID), "runAsNonRoot": True}  # int64 as JSON


def compile_to_text(pipeline: Any, folder: Path) -> str:
    package = folder / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(package))
    return package.read_text()


def executor_settings(text: str) -> dict[str, dict[str, Any]]:
    """Executor name -> its kfp-kubernetes settings (the compiled file's second document)."""
    documents = list(yaml.safe_load_all(text))
    assert len(documents) == 2, "no Kubernetes platform document was compiled"
    return documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> str:
    placement = GpuPlacement(node_selector=("cloud.google.com/gke-accelerator", "nvidia-tesla-t4"))
    return compile_to_text(create_pipeline(placement=placement), tmp_path_factory.mktemp("compiled"))


def test_every_task_runs_as_the_images_non_root_user_with_scratch_at_tmp(compiled: str) -> None:
    executors = executor_settings(compiled)
    assert len(executors) == TASKS
    for name, settings in executors.items():
        assert settings["securityContext"] == NON_ROOT, name
        assert settings["emptyDirMounts"] == [{"mountPath": SCRATCH_PATH, "volumeName": "scratch"}], name


def test_task_user_is_the_images_user() -> None:
    [user] = re.findall(r"^USER (\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert user == f"{IMAGE_UID}:{IMAGE_UID}"
    assert f"HOME={SCRATCH_PATH} " in DOCKERFILE.read_text()  # the image's scratch is the tasks' emptyDir


def test_security_context_can_be_left_out_for_older_backends(tmp_path: Path) -> None:
    executors = executor_settings(compile_to_text(create_pipeline(security_context=False), tmp_path))
    assert len(executors) == TASKS
    assert not [name for name, settings in executors.items() if "securityContext" in settings]
    assert all(settings["emptyDirMounts"] for settings in executors.values())  # scratch stays


def test_compiled_pipeline_holds_no_credentials(compiled: str) -> None:
    assert not SECRET_TEXT.search(compiled)
    assert credential_findings(list(yaml.safe_load_all(compiled))) == []


def test_credential_check_finds_a_secret_planted_in_a_compiled_task(tmp_path: Path) -> None:
    @dsl.component(base_image="tunepipe:0.1.0")
    def step() -> None:
        pass

    @dsl.pipeline(name="leaky")
    def leaky() -> None:
        step().set_env_variable("API_TOKEN", "s3cr3t-value")

    text = compile_to_text(leaky, tmp_path)
    findings = credential_findings(list(yaml.safe_load_all(text)))
    assert findings and "API_TOKEN" in findings[0]
