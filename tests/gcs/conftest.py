"""A GCS emulator (``gcp-storage-emulator``) on loopback, started and stopped by the tests.

``STORAGE_EMULATOR_HOST`` points ``google.cloud.storage.Client()`` at it, which then uses
anonymous credentials: the same code path as production with its default credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tunepipe.execution.tuner_processes import free_port


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_client(gcs_server: str, monkeypatch: pytest.MonkeyPatch):
    """A storage client talking to the emulator, and the environment that ``tunepipe`` steps see."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "tunepipe-test")
    return storage.Client(project="tunepipe-test", credentials=AnonymousCredentials())


@pytest.fixture
def bucket(gcs_client, request: pytest.FixtureRequest):
    """A fresh bucket per test, named after it."""
    name = "tp-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    return gcs_client.create_bucket(name)



@pytest.fixture(scope="session")
def emulator(gcs_server: str) -> Iterator[str]:
    """The emulator for the whole session, through STORAGE_EMULATOR_HOST (publishing tests)."""
    import os

    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = gcs_server
    try:
        yield gcs_server
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def client(emulator: str):
    """An anonymous client of the emulator (no credentials anywhere)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(credentials=AnonymousCredentials(), project="tunepipe-test")


@pytest.fixture
def bucket_name(client, request: pytest.FixtureRequest) -> str:
    """A fresh, uniquely named bucket per test; its name."""
    import re
    import uuid

    name = f"tp-{uuid.uuid4().hex[:8]}-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    client.create_bucket(name)
    return name


# ---- fault injection (tests/gcs/test_gcs_faults_*.py) ----------------------------------------

# Attempts of the fast policy below: the faults "below the bound" number FAST_ATTEMPTS - 1.
FAST_ATTEMPTS = 4


@pytest.fixture
def fast_retry():
    """The production retry policy with millisecond waits (jitter and deadline still on)."""
    from tunepipe.storage.objectstore import RetryPolicy

    return RetryPolicy(attempts=FAST_ATTEMPTS, initial_delay=0.005, max_delay=0.02, deadline=30.0)


@pytest.fixture
def fault_proxy(gcs_server: str):
    """A fault-injecting proxy in front of the emulator (see fault_proxy.py), no fault armed."""
    from fault_proxy import FaultProxy

    with FaultProxy(gcs_server).running() as proxy:
        yield proxy


@pytest.fixture
def proxied_client(fault_proxy, emulator: str):
    """An anonymous storage client whose every request goes through the fault proxy.

    Objects are written through it too: the emulator builds their ``mediaLink`` from the
    ``Host`` header, so downloads of them also pass the proxy.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="tunepipe-test", credentials=AnonymousCredentials(),
                          client_options=ClientOptions(api_endpoint=fault_proxy.url))
