"""--pipeline-root reaches the compiled spec (upload) and the run/recurring-run body (submit, schedule)."""

from pathlib import Path

import pytest
import yaml
from fake_kfp import FakeKfp

from tunepipe.errors import ConfigError

pytestmark = pytest.mark.cluster
ROOT = "gs://team-bucket/kfp-root"


@pytest.fixture
def uploaded(kfp_server: FakeKfp, tiny_package: Path) -> str:
    pipeline_id = kfp_server.add_pipeline("tunepipe")
    kfp_server.add_version(pipeline_id, "tunepipe", tiny_package.read_text())
    return pipeline_id


def test_upload_compiles_the_root_into_the_spec(kfp_server: FakeKfp, tunepipe) -> None:
    assert tunepipe("upload", "--host", kfp_server.url, "--pipeline-root", ROOT + "/") == 0
    (upload,) = kfp_server.requests_to("POST", "/pipelines/upload")
    assert next(yaml.safe_load_all(upload.fields["uploadfile"]))["defaultPipelineRoot"] == ROOT


def test_upload_without_the_option_leaves_the_backend_default(kfp_server: FakeKfp, tunepipe) -> None:
    assert tunepipe("upload", "--host", kfp_server.url) == 0
    (upload,) = kfp_server.requests_to("POST", "/pipelines/upload")
    assert "defaultPipelineRoot" not in next(yaml.safe_load_all(upload.fields["uploadfile"]))


@pytest.mark.parametrize("extra", [[], ["--no-cache"]], ids=["version-reference", "inline-spec"])
def test_submit_sends_the_root_in_the_runtime_config(kfp_server: FakeKfp, tunepipe, uploaded, extra) -> None:
    assert tunepipe("submit", "--host", kfp_server.url, "--pipeline-root", "s3://artifacts/runs", *extra) == 0
    (create,) = kfp_server.requests_to("POST", "/runs")
    assert create.body["runtime_config"]["pipeline_root"] == "s3://artifacts/runs"


def test_submit_without_the_option_sends_no_root(kfp_server: FakeKfp, tunepipe, uploaded) -> None:
    assert tunepipe("submit", "--host", kfp_server.url) == 0
    (create,) = kfp_server.requests_to("POST", "/runs")
    assert "pipeline_root" not in create.body.get("runtime_config", {})


def test_schedule_sends_the_root_in_the_runtime_config(kfp_server: FakeKfp, tunepipe, uploaded) -> None:
    assert tunepipe(
        "schedule", "create", "--host", kfp_server.url, "--interval", "60", "--pipeline-root", "minio://mlpipeline/x",
    ) == 0
    (create,) = kfp_server.requests_to("POST", "/recurringruns")
    assert create.body["runtime_config"]["pipeline_root"] == "minio://mlpipeline/x"


@pytest.mark.parametrize("value", ["", "team-bucket/root", "/data/root", "http://host/root", "gs://", "gs:///x"])
@pytest.mark.parametrize("command", [["submit"], ["schedule", "create", "--interval", "60"], ["upload"]])
def test_a_root_without_a_bucket_uri_is_refused_before_any_request(
    kfp_server: FakeKfp, tunepipe, command, value
) -> None:
    with pytest.raises(ConfigError, match=rf"--pipeline-root must be a bucket URI .* got '{value}'"):
        tunepipe(*command, "--host", kfp_server.url, "--pipeline-root", value)
    assert kfp_server.requests == []


def test_upload_refuses_a_root_with_a_ready_package(kfp_server: FakeKfp, tunepipe, tiny_package: Path) -> None:
    from pipelines.errors import ClusterError

    with pytest.raises(ClusterError, match="--pipeline-root are compile options; not with --package"):
        tunepipe("upload", "--host", kfp_server.url, "--package", str(tiny_package), "--pipeline-root", ROOT)
    assert kfp_server.requests == []
