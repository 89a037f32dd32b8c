"""A local GCS emulator server (gcp-storage-emulator) on loopback, one per test session."""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    """Starts the emulator on a free port; the client library finds it via STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        server.stop()
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
def bucket(client, request) -> str:
    """A fresh bucket per test."""
    name = f"tp-{uuid.uuid4().hex[:8]}-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    client.create_bucket(name)
    return name
