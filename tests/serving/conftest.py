"""``tunepipe serve`` as a user starts it: a subprocess on loopback, over a published model folder.

test_serve_published.py serves versions the pipeline itself published; test_serve_http.py uses the
small SavedModels of tests/serving_models.py (the contract's exact signatures, published in today's
layout) for the request limits and refusals, which need no trained model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tunepipe.execution.tuner_processes import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0  # TensorFlow's import and the first load take ~10 s on two busy cores


@dataclass
class Server:
    """A running ``tunepipe serve``: its URL, model folder and process."""

    url: str
    name: str
    model_dir: Path
    process: subprocess.Popen[str]

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{self.name}:predict"

    def ready(self) -> int:
        return requests.get(f"{self.url}/v1/models/{self.name}", timeout=5).status_code

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"tunepipe serve exited with {self.process.returncode}"
            try:
                if self.ready() == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.url}: not ready after {timeout:.0f} s")

    def wait_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"tunepipe serve exited with {self.process.returncode}"
            try:
                requests.get(f"{self.url}/", timeout=5)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"{self.url}: not listening")


def start_server(export_root: Path, name: str, log: Path, *options: str) -> Server:
    """Starts ``tunepipe serve`` (not waiting); its log goes to ``log``."""
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--export-root", str(export_root), "--model-name",
               name, "--host", LOOPBACK, "--port", str(port), "--poll-seconds", "0.2", *options]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    (export_root / name).mkdir(parents=True, exist_ok=True)
    return Server(f"http://{LOOPBACK}:{port}", name, export_root / name, process)


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Servers started by a module's fixtures, stopped (SIGTERM, then SIGKILL) at its end."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@dataclass
class Load:
    """Client threads sending ``body`` to ``server`` until stopped; every failure and answering version kept."""

    server: Server
    body: dict[str, Any]
    clients: int = 1
    failures: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _client(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(self.server.predict_url, json=self.body, timeout=30)
                except requests.RequestException as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                else:
                    self.versions.append(response.json()["model_version"])

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_version(self, version: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (not self.versions or self.versions[-1] != version):
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
