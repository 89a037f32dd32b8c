"""How the cluster commands connect: endpoint from the environment, tokens, unreachable servers, CLI wiring."""

import argparse
import socket
import time
from pathlib import Path

import pytest
from fake_kfp import FakeKfp
from kfp.client import client as kfp_client

from pipelines.remote import ClusterError, add_remote_commands, parse_param

pytestmark = pytest.mark.cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_a_cluster_error_naming_the_host(tunepipe) -> None:
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(ClusterError) as error:
        tunepipe("runs", "--host", f"http://127.0.0.1:{port}")
    message = str(error.value)
    assert f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in message
    assert "refused" in message.lower()
    assert time.monotonic() - start < 10  # kfp.Client's healthz retries (5 x 5 s) do not apply here


def test_endpoint_from_kf_pipelines_endpoint_and_token_on_every_request(
    kfp_server: FakeKfp, tunepipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KF_PIPELINES_ENDPOINT", kfp_server.url)
    assert tunepipe("runs", "--existing-token", "s3cret-token") == 0
    assert [request.path for request in kfp_server.requests] == ["/apis/v2beta1/healthz", "/apis/v2beta1/runs"]
    assert {request.authorization for request in kfp_server.requests} == {"Bearer s3cret-token"}
    assert not Path(kfp_client.Client._LOCAL_KFP_CONTEXT).exists()  # nothing written to kfp's context file


def test_namespace_is_sent_and_skips_the_health_check(kfp_server: FakeKfp, tunepipe) -> None:
    assert tunepipe("runs", "--host", kfp_server.url, "--namespace", "team-a") == 0
    assert [request.path for request in kfp_server.requests] == ["/apis/v2beta1/runs"]
    assert kfp_server.requests[0].query["namespace"] == "team-a"
    assert kfp_server.requests[0].authorization is None


def test_ambiguous_pipeline_name_is_a_cluster_error(kfp_server: FakeKfp, tunepipe, tiny_package: Path) -> None:
    kfp_server.add_pipeline("tunepipe")
    kfp_server.add_pipeline("tunepipe")  # two with one name: kfp.Client refuses to choose
    with pytest.raises(ClusterError, match=f"Multiple pipelines with the name: tunepipe.*{kfp_server.url}"):
        tunepipe("upload", "--host", kfp_server.url, "--package", str(tiny_package))
    assert not kfp_server.requests_to("POST", "/pipelines/upload_version")


def test_http_errors_name_the_status_and_server_message(kfp_server: FakeKfp, tunepipe) -> None:
    kfp_server.add_pipeline("tunepipe")
    with pytest.raises(ClusterError, match=rf"{kfp_server.url} answered 404 .*pipeline version 'version-x' not found"):
        tunepipe("submit", "--host", kfp_server.url, "--version-id", "version-x", "--no-cache")
    assert not kfp_server.requests_to("POST", "/runs")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("seed=11", ("seed", 11)), ("ratio=0.5", ("ratio", 0.5)), ("flag=true", ("flag", True)),
     ("space={\"units\": [8]}", ("space", {"units": [8]})), ("uri=gs://b/d.csv", ("uri", "gs://b/d.csv")),
     ("label=", ("label", "")), ("note=a=b", ("note", "a=b"))],
)
def test_param_values_are_json_when_they_parse(text: str, expected: tuple) -> None:
    assert parse_param(text) == expected


def test_param_without_equals_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        parse_param("seed")


def test_registers_the_commands_and_their_handlers() -> None:
    parser = argparse.ArgumentParser(prog="tunepipe")
    commands = parser.add_subparsers(dest="command", required=True)
    handlers = add_remote_commands(commands)
    assert set(handlers) == {"upload", "submit", "schedule", "runs"}
    args = parser.parse_args(["schedule", "create", "--cron", "0 0 3 * * *"])
    assert (args.max_concurrency, args.catchup, args.experiment, args.name) == (1, False, "tunepipe", "tunepipe")
    assert (args.host, args.namespace, args.existing_token, args.ssl_ca_cert) == (None, None, None, None)


def test_the_tunepipe_cli_reports_cluster_errors_as_one_line(capsys) -> None:
    from pipelines import cli

    try:
        cli._parser().parse_args(["runs"])
    except SystemExit:
        pytest.skip("pipelines.cli does not register the cluster commands yet (add_remote_commands)")
    capsys.readouterr()
    port = _free_port()
    assert cli.main(["runs", "--host", f"http://127.0.0.1:{port}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}")
