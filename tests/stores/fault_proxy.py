"""A fault-injecting HTTP proxy in front of the GCS emulator, for the ``gcs`` tier.

The storage client talks to the proxy (``STORAGE_EMULATOR_HOST`` or the client's api
endpoint) and the proxy forwards every request to the emulator, unless an armed
:class:`Fault` matches it first. A fault answers the next ``times`` matching requests with:

- ``status``: an HTTP error (503, 429, 500, ...) with a JSON error body; nothing is forwarded.
- ``reset``: the connection is reset (RST) without an answer; nothing is forwarded, as when
  an upload is cut off on the way.
- ``lost_response``: the request is forwarded (the emulator does the work), then the
  connection is reset: the client never learns that it succeeded.
- ``truncate``: the request is forwarded and the answer cut off after half its body.

The emulator builds ``mediaLink`` from the ``Host`` header, which the proxy passes through, so
objects written through the proxy are also downloaded through it. Every request is recorded
(method, decoded path and query, the fault applied or ``"ok"``) so that tests can count
attempts.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

KINDS = ("status", "reset", "lost_response", "truncate")
# Headers that belong to one connection, not to the request or answer being forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


@dataclass
class Fault:
    """Answers the next ``times`` requests matching ``method``, ``path`` and ``body`` with ``kind``.

    Attributes:
        method: HTTP method, e.g. ``"GET"``; ``"*"`` matches any.
        path: Regular expression searched in the URL-decoded path and query.
        kind: One of :data:`KINDS`.
        times: How many matching requests fail; the rest pass through.
        status: The HTTP status of a ``status`` fault.
        body: Regular expression searched in the request body (an upload names its object only
            there); ``None`` matches any body.
    """

    method: str
    path: str
    kind: str = "status"
    times: int = 1
    status: int = 503
    body: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (self.hits < self.times and self.method in ("*", method) and re.search(self.path, path) is not None
                and (self.body is None or re.search(self.body.encode(), body) is not None))


@dataclass(frozen=True)
class Request:
    """One request the proxy saw and what it did with it."""

    method: str
    path: str
    outcome: str


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 forwarding to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        parsed = urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, kind: str = "status", times: int = 1, status: int = 503,
             body: str | None = None) -> Fault:
        """Arms a fault (see :class:`Fault`); faults are tried in the order they were armed."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {KINDS}")
        fault = Fault(method, path, kind, times, status, body)
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Disarms every fault and forgets the requests seen."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()

    def count(self, method: str, path: str) -> int:
        """How many requests with ``method`` and a path matching ``path`` arrived (faulted or not)."""
        with self.lock:
            return sum(1 for seen in self.requests if seen.method == method and re.search(path, seen.path))

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _take(self, method: str, path: str, body: bytes) -> Fault | None:
        with self.lock:
            fault = next((fault for fault in self.faults if fault.matches(method, path, body)), None)
            if fault is not None:
                fault.hits += 1
            self.requests.append(Request(method, path, fault.kind if fault else "ok"))
            return fault


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows failures
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            """Closes the connection with an RST: the client sees 'connection reset by peer'."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            self.wfile = io.BytesIO()  # http.server flushes it after every request: a sink now
            self.close_connection = True

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                headers = {key: value for key, value in self.headers.items() if key.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                return answer.status, answer.getheaders(), answer.read()
            finally:
                upstream.close()

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes, cut: bool = False) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body[: len(body) // 2] if cut else body)
            self.wfile.flush()

        def _handle(self) -> None:
            body = self._body()
            fault = proxy._take(self.command, unquote(self.path), body)
            if fault is not None and fault.kind == "status":
                error = {"error": {"code": fault.status, "message": f"injected {fault.status} by the fault proxy"}}
                self._answer(fault.status, [("Content-Type", "application/json")], json.dumps(error).encode())
            elif fault is not None and fault.kind == "reset":
                self._reset()
            else:
                status, headers, answer = self._forward(body)
                if fault is not None and fault.kind == "lost_response":
                    self._reset()
                elif fault is not None and fault.kind == "truncate":
                    self._answer(status, headers, answer, cut=True)
                    self._reset()
                else:
                    self._answer(status, headers, answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler
