"""A real S3 API server (moto's server mode) on loopback, started and stopped by the tests.

moto implements S3's REST API; boto3 talks to it over HTTP exactly as to AWS or MinIO. The
environment the tests set is the standard AWS chain tunepipe relies on: fake credentials,
``AWS_ENDPOINT_URL`` (the server), a region; no profile or instance metadata is consulted.
Steps started as subprocesses inherit it.

moto checks ``If-None-Match``/``If-Match`` on PutObject (probed: a second create-only write and
a stale ETag both get 412), but its check and its write are two steps of a threaded server, so
two *concurrent* conditional writes can both pass. :class:`AtomicConditionalClient` closes
that gap for the tests that race publishers: it is the real moto-backed client, with each
conditional PutObject serialized by a lock, as S3 itself makes it atomic.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tunepipe.execution.tuner_processes import free_port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> str:
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
    """A boto3 client of the server, built from the environment like tunepipe's own."""
    from tunepipe.storage.s3 import default_s3_client

    return default_s3_client()


@pytest.fixture
def bucket_name(s3_client, request: pytest.FixtureRequest) -> str:
    """A fresh, uniquely named bucket per test; its name (S3 rules: no '_')."""
    name = f"tp-{uuid.uuid4().hex[:8]}-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def fast_retry():
    """The production retry policy with millisecond waits (jitter and deadline still on)."""
    from tunepipe.storage.objectstore import RetryPolicy

    return RetryPolicy(attempts=4, initial_delay=0.005, max_delay=0.02, deadline=30.0)


def put_text(client: Any, bucket: str, key: str, data: bytes | str) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)


class AtomicConditionalClient:
    """The real moto-backed client; conditional PutObjects are serialized (see the module docstring).

    Only ``put_object`` with ``IfMatch`` or ``IfNoneMatch`` takes the lock; moto still decides
    whether the precondition holds. Every other call goes straight to the client.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def put_object(self, **kwargs: Any) -> Any:
        if "IfMatch" not in kwargs and "IfNoneMatch" not in kwargs:
            return self._client.put_object(**kwargs)
        with self._lock:
            return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Faults:
    """Answers chosen S3 operations with an error before they reach the server, through botocore's
    own ``before-send`` hook, so the real client parses the error as it would from AWS.

    ``fail("PutObject", 503, "SlowDown", times=2, key="model.keras")`` answers the next two
    PutObjects whose URL contains ``model.keras`` with a 503 ``SlowDown``.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.rules: list[dict[str, Any]] = []
        client.meta.events.register("before-send.s3", self._answer)

    def fail(self, operation: str, status: int, code: str, times: int = 1, key: str = "") -> dict[str, Any]:
        rule = {"operation": operation, "status": status, "code": code, "times": times, "key": key, "hits": 0}
        self.rules.append(rule)
        return rule

    def _answer(self, request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        for rule in self.rules:
            if rule["operation"] == operation and rule["key"] in request.url and rule["hits"] < rule["times"]:
                rule["hits"] += 1
                if rule["status"] == 0:
                    from botocore.exceptions import EndpointConnectionError

                    raise EndpointConnectionError(endpoint_url=request.url)
                body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{rule['code']}</Code>"
                        f"<Message>injected</Message></Error>").encode()
                return AWSResponse(request.url, rule["status"], {"Content-Type": "application/xml"}, _Raw(body))
        return None


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def faults(s3_client) -> Faults:
    return Faults(s3_client)
