"""tunepipe upload against a fake KFP server: compile, first upload, new versions, refusals."""

import re
from pathlib import Path

import pytest
import yaml
from fake_kfp import FakeKfp

from pipelines.remote import DEFAULT_PIPELINE, ClusterError
from tunepipe import __version__

pytestmark = pytest.mark.cluster


def _executor_images(spec_text: str) -> set[str]:
    pipeline_spec = next(yaml.safe_load_all(spec_text))
    return {executor["container"]["image"] for executor in pipeline_spec["deploymentSpec"]["executors"].values()}


def test_upload_compiles_the_pipeline_and_creates_it(kfp_server: FakeKfp, tunepipe, capsys) -> None:
    cpu, gpu = "registry.example/tunepipe@sha256:" + "0123abcd" * 8, "registry.example/tunepipe-gpu:9"
    assert tunepipe("upload", "--host", kfp_server.url, "--image", cpu, "--gpu-image", gpu) == 0

    (upload,) = kfp_server.requests_to("POST", "/pipelines/upload")
    assert upload.query["name"] == "tunepipe"
    assert set(upload.fields) == {"uploadfile"}
    pipeline_spec = next(yaml.safe_load_all(upload.fields["uploadfile"]))
    assert pipeline_spec["pipelineInfo"]["name"] == "tunepipe"
    assert _executor_images(upload.fields["uploadfile"]) == {cpu, gpu}
    assert not kfp_server.requests_to("POST", "/pipelines/upload_version")

    (pipeline_id,) = kfp_server.pipelines
    (version,) = kfp_server.versions.values()
    out = capsys.readouterr().out
    assert f"pipeline id   {pipeline_id}" in out
    assert f"version id    {version['pipeline_version_id']}" in out
    assert f"{kfp_server.url}/#/pipelines/details/{pipeline_id}/version/{version['pipeline_version_id']}" in out


def test_second_upload_of_the_same_name_adds_a_version(
    kfp_server: FakeKfp, tunepipe, tiny_package: Path, capsys
) -> None:
    assert tunepipe("upload", "--host", kfp_server.url, "--package", str(tiny_package)) == 0
    assert tunepipe(
        "upload", "--host", kfp_server.url, "--package", str(tiny_package), "--description", "nightly build"
    ) == 0
    assert tunepipe("upload", "--host", kfp_server.url, "--package", str(tiny_package), "--version-name", "v3") == 0

    assert len(kfp_server.requests_to("POST", "/pipelines/upload")) == 1
    assert len(kfp_server.pipelines) == 1
    (pipeline_id,) = kfp_server.pipelines
    second, third = kfp_server.requests_to("POST", "/pipelines/upload_version")
    assert second.query["pipelineid"] == third.query["pipelineid"] == pipeline_id
    assert re.fullmatch(rf"{re.escape(__version__)}-\d{{8}}-\d{{6}}", second.query["name"]), second.query["name"]
    assert second.query["description"] == "nightly build"
    assert third.query["name"] == "v3"
    assert second.fields["uploadfile"] == tiny_package.read_text()
    latest = max(kfp_server.versions.values(), key=lambda version: version["created_at"])
    out = capsys.readouterr().out
    assert "uploaded version 'v3' of pipeline 'tunepipe'" in out
    assert f"version id    {latest['pipeline_version_id']}" in out


def test_upload_uses_the_given_name(kfp_server: FakeKfp, tunepipe, tiny_package: Path) -> None:
    kfp_server.add_pipeline("tunepipe")  # another pipeline: must not receive a version
    assert tunepipe("upload", "--host", kfp_server.url, "--package", str(tiny_package), "--name", "tunepipe-dev") == 0
    (upload,) = kfp_server.requests_to("POST", "/pipelines/upload")
    assert upload.query["name"] == "tunepipe-dev"


def test_upload_refuses_a_missing_package_before_connecting(kfp_server: FakeKfp, tunepipe, tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does not exist"):
        tunepipe("upload", "--host", kfp_server.url, "--package", str(tmp_path / "nope.yaml"))
    with pytest.raises(ClusterError, match="--gpu-image"):
        tunepipe("upload", "--host", kfp_server.url, "--package", str(tmp_path), "--gpu-image", "gpu:1")
    assert kfp_server.requests == []


def test_default_pipeline_name_is_the_compiled_one() -> None:
    from pipelines.pipeline import PIPELINE_NAME

    assert DEFAULT_PIPELINE == PIPELINE_NAME
