"""The store-contract suite's servers and places: a GCS emulator and moto's S3 server on loopback,
started by the tests and stopped after them, and local folders.

``place`` gives each contract test one fresh bucket of each store and one fresh local folder; the
``gcs`` and ``s3`` parameters carry those markers (``make gcs``, ``make s3``), the ``local`` one
``unit``. ``remote`` gives the two object stores only, for the object-store protocol itself.

The environment each server needs is the one a user's would be, read by the client libraries
themselves: ``STORAGE_EMULATOR_HOST`` (with anonymous credentials) for GCS; fake keys,
``AWS_ENDPOINT_URL`` and a region for S3, with no profile or instance metadata consulted. Steps
started as subprocesses inherit it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_places import GCS, LOCAL, S3, Place, fast_policy, gcs_place, local_place, s3_place

from tunepipe.execution.tuner_processes import free_port


def bucket_name(request: pytest.FixtureRequest) -> str:
    """A fresh, unique bucket name after the test's (valid in GCS and S3: no '_')."""
    return f"tp-{uuid.uuid4().hex[:8]}-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")


def serving(server: Any, port: int) -> Iterator[str]:
    """Starts ``server`` (listening on loopback ``port``), yields its URL, and stops it afterwards."""
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


# ---- Google Cloud Storage: gcp-storage-emulator ----------------------------------------------


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    yield from serving(create_server("127.0.0.1", port, in_memory=True), port)


@pytest.fixture
def gcs_client(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An anonymous client of the emulator, and the environment tunepipe's default client (and steps) see."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "tunepipe-test")
    return storage.Client(project="tunepipe-test", credentials=AnonymousCredentials())


@pytest.fixture
def gcs_bucket(gcs_client: Any, request: pytest.FixtureRequest) -> str:
    """A fresh bucket of the emulator; its name."""
    name = bucket_name(request)
    gcs_client.create_bucket(name)
    return name


@pytest.fixture
def fault_proxy(gcs_server: str) -> Iterator[Any]:
    """A fault-injecting proxy in front of the emulator (fault_proxy.py), no fault armed."""
    from fault_proxy import FaultProxy

    with FaultProxy(gcs_server).running() as proxy:
        yield proxy


@pytest.fixture
def proxied_client(fault_proxy: Any, gcs_client: Any) -> Any:
    """An anonymous storage client whose every request goes through the fault proxy.

    Objects are written through it too: the emulator builds their ``mediaLink`` from the ``Host``
    header, so downloads of them also pass the proxy.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="tunepipe-test", credentials=AnonymousCredentials(),
                          client_options=ClientOptions(api_endpoint=fault_proxy.url))


# ---- Amazon S3: moto's server ----------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    yield from serving(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False), port)


@pytest.fixture
def aws_env(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The standard AWS chain pointed at the server: what tunepipe's default client (and steps) see."""
    nothing = tmp_path_factory.mktemp("aws") / "none"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tunepipe-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tunepipe-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nothing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nothing))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


@pytest.fixture
def s3_client(aws_env: str) -> Any:
    """A boto3 client of the server, built from the environment as tunepipe's own is."""
    from tunepipe.storage.s3 import default_s3_client

    return default_s3_client()


@pytest.fixture
def s3_bucket(s3_client: Any, request: pytest.FixtureRequest) -> str:
    """A fresh bucket of the server; its name."""
    name = bucket_name(request)
    s3_client.create_bucket(Bucket=name)
    return name


# ---- places ----------------------------------------------------------------------------------


def _place(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if kind == "local":
        return local_place(tmp_path / "bucket")
    name = bucket_name(request)
    if kind == "gcs":
        client = request.getfixturevalue("gcs_client")
        client.create_bucket(name)
        return gcs_place(client, name)
    client = request.getfixturevalue("s3_client")
    client.create_bucket(Bucket=name)
    return s3_place(client, name)


@pytest.fixture(params=[GCS, S3, LOCAL])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """A fresh bucket of each object store, and a fresh local folder."""
    return _place(request.param, request, tmp_path)


@pytest.fixture(params=[GCS, S3])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """A fresh bucket of each object store."""
    return _place(request.param, request, tmp_path)


@pytest.fixture
def fast_retry():
    return fast_policy()
