"""Fixtures of the cluster tier: a fake KFP API server, a tiny compiled pipeline, the commands' parser."""

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_kfp import FakeKfp  # pytest puts this folder on sys.path
from kfp import compiler, dsl, kubernetes
from kfp.client import client as kfp_client

from pipelines.remote import add_remote_commands
from pipelines.watch import add_watch_command


@dsl.component(base_image="python:3.11-slim")
def _echo(text: str) -> str:
    return text


@dsl.pipeline(name="tunepipe")
def _tiny(data_uri: str = "sample://penguins", seed: int = 42) -> None:
    first = _echo(text=data_uri)
    _echo(text=first.output)


@dsl.pipeline(name="tunepipe")
def _tiny_on_gpu_pool(data_uri: str = "sample://penguins", seed: int = 42) -> None:
    first = _echo(text=data_uri)
    kubernetes.add_node_selector(_echo(text=first.output), "pool", "gpu")


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compiled pipeline named tunepipe (one YAML document, caching on for both tasks)."""
    path = tmp_path_factory.mktemp("tiny") / "pipeline.yaml"
    compiler.Compiler().compile(_tiny, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_platform_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with a Kubernetes node selector: two YAML documents (pipeline and platform spec)."""
    path = tmp_path_factory.mktemp("tiny-gpu") / "pipeline.yaml"
    compiler.Compiler().compile(_tiny_on_gpu_pool, str(path))
    return path


@pytest.fixture(autouse=True)
def _isolated_kfp_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KF_PIPELINES_* settings and no ~/.config/kfp/context.json from the machine running the tests."""
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
                 "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))


@pytest.fixture
def kfp_server() -> Iterator[FakeKfp]:
    fake = FakeKfp().start()
    yield fake
    fake.stop()
    assert not fake.unhandled, f"requests the fake KFP server does not implement: {fake.unhandled}"


def _run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tunepipe")
    commands = parser.add_subparsers(dest="command", required=True)
    handlers = {**add_remote_commands(commands), **add_watch_command(commands)}
    args = parser.parse_args(list(argv))
    return handlers[args.command](args)


@pytest.fixture
def tunepipe() -> Callable[..., int]:
    """Runs one cluster command through a parser built the way pipelines.cli builds its own.

    Returns the handler's exit status; expected failures raise (ClusterError, ConfigError) so a
    test can name the error it expects.
    """
    return _run_command
