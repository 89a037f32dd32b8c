"""``tunepipe serve``: KServe's Python model server around the followed champion.

The only module that imports ``kserve`` (the optional extra ``tunepipe[serve]``). KServe gives the
HTTP server, protocol v1 (``POST /v1/models/<name>:predict``), liveness (``GET /``), readiness
(``GET /v1/models/<name>``: 200 once a version is loaded, 503 before), metrics and its error
mapping (``InvalidInput`` -> 400); this module adds the request decoding, the body-size limit, the
listening interface and the follower that loads and swaps versions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from tunepipe.errors import BadRequest
from tunepipe.serving.loader import ChampionFollower, source_for
from tunepipe.serving.requests import decode_request, prediction_rows
from tunepipe.serving.settings import ServeSettings

# kserve.model_server parses sys.argv when it is imported (its own --http_port ...): hide ours from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve
    from kserve.errors import InvalidInput, ModelNotReady
    from kserve.logging import logger as kserve_log
    from kserve.model_server import app as kserve_app
finally:
    sys.argv = _argv

log = logging.getLogger(__name__)
MODEL_VERSION = "model_version"  # beside "predictions": which version answered


class ChampionModel(kserve.Model):
    """A KServe model whose predictions come from the follower's current version.

    Ready (KServe's readiness endpoint) once a version is loaded; each request takes the version
    current when it starts, so a swap never fails a request.
    """

    def __init__(self, name: str, follower: ChampionFollower, settings: ServeSettings) -> None:
        super().__init__(name)
        self.follower, self.settings = follower, settings

    def load(self) -> bool:
        self.ready = self.follower.current is not None
        return self.ready

    def start(self) -> None:
        """KServe's default marks the model ready here; readiness is the follower's to decide."""

    async def healthy(self) -> bool:
        return self.follower.current is not None

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> dict[str, Any]:
        model = self.follower.current
        if model is None:
            raise ModelNotReady(self.name, "no version loaded yet")
        try:
            feeds = decode_request(_json(payload), model.contract, self.settings.limits)
        except BadRequest as error:
            raise InvalidInput(str(error)) from None
        outputs = await asyncio.get_running_loop().run_in_executor(None, model.predict, feeds)
        return {"predictions": prediction_rows(outputs), MODEL_VERSION: model.version}


def _json(payload: Any) -> Any:
    """The parsed body; KServe hands on the raw bytes when the content type is not JSON."""
    if not isinstance(payload, bytes | str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        raise BadRequest(f"request body is not JSON: {payload[:80]!r}") from None


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 400 before anything parses it.

    A declared ``Content-Length`` is checked at once; a chunked body is read up to the limit and
    handed on whole.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if int(length) > self.max_bytes:
                await self._refuse(send, f"{int(length)} bytes")
                return
            await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, f"over {self.max_bytes} bytes")
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        queued = iter(messages)

        async def replay() -> Any:
            return next(queued, None) or await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, size: str) -> None:
        body = json.dumps({"error": f"request body of {size} is over the limit of {self.max_bytes} bytes "
                                    "(--max-body-bytes)"}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _Server(kserve.ModelServer):
    """KServe's server listening on ``host`` (KServe itself always binds 0.0.0.0)."""

    def __init__(self, host: str, **options: Any) -> None:
        super().__init__(**options)
        self.host = host

    async def _serve(self) -> None:
        if self._rest_server is not None:  # built by start(), not yet listening
            self._rest_server.config.host = self.host
        await super()._serve()


def _log_like_kserve() -> None:
    """tunepipe's messages (loads, swaps, refused versions) through the handlers KServe set up."""
    ours = logging.getLogger("tunepipe")
    ours.setLevel(logging.INFO)
    for handler in kserve_log.handlers:
        ours.addHandler(handler)


def serve(settings: ServeSettings) -> None:
    """Starts the follower and KServe's server; returns when the server is stopped (SIGTERM, SIGINT)."""
    follower = ChampionFollower(source_for(settings.export_root, settings.model_name, settings.cache_dir),
                                settings.version, settings.poll_seconds)
    model = ChampionModel(settings.model_name, follower, settings)
    kserve_app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes)
    server = _Server(settings.host, http_port=settings.port, enable_grpc=False, workers=1)
    _log_like_kserve()
    server.register_model(model)  # registered while not ready: readiness says 503 until the first load
    follower.start()
    log.info("serve: %s/%s on http://%s:%d (polling every %gs)", settings.export_root, settings.model_name,
             settings.host, settings.port, settings.poll_seconds)
    try:
        server.start([])
    finally:
        follower.stop()
