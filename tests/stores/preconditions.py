"""Generation preconditions for the GCS emulator, as Cloud Storage enforces them on uploads.

``gcp-storage-emulator`` ignores ``ifGenerationMatch``: every conditional write succeeds. The
watcher's exactly-once record depends on it (``ifGenerationMatch=0``: create only if absent;
``ifGenerationMatch=N``: replace only generation N), so its drill against the emulator runs with
this wrapper around the emulator's upload handler: a media or multipart upload carrying
``ifGenerationMatch`` is refused with 412 ``conditionNotMet`` (Cloud Storage's answer, which
google-cloud-storage raises as ``PreconditionFailed``) unless the object's live generation matches,
0 meaning "no live object". Check and write happen under one lock, as one request is atomic in GCS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

NOT_MET = "At least one of the pre-conditions you specified did not hold."
CONDITION_NOT_MET = {"error": {"code": 412, "message": NOT_MET,
                               "errors": [{"domain": "global", "reason": "conditionNotMet", "message": NOT_MET}]}}


def _live_generation(storage: Any, bucket: str, name: str) -> int:
    try:
        return int(storage.get_file_obj(bucket, name)["generation"])
    except NotFound:
        return 0


def _object_name(request: Any) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data
    return data.get("meta", {}).get("name") if isinstance(data, dict) else None


@contextmanager
def enforced() -> Iterator[None]:
    """Enforces ``ifGenerationMatch`` on uploads while the block runs."""
    original = objects.insert
    lock = threading.Lock()

    def insert(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = request.query.get("ifGenerationMatch")
        with lock:
            if wanted is not None:
                name, bucket = _object_name(request), request.params["bucket_name"]
                if name is not None and _live_generation(storage, bucket, name) != int(wanted[0]):
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    response.json(CONDITION_NOT_MET)
                    return None
            return original(request, response, storage, *args, **kwargs)

    routes = [handlers for _, handlers in server.HANDLERS if original in handlers.values()]
    for handlers in routes:
        for method, handler in list(handlers.items()):
            if handler is original:
                handlers[method] = insert
    try:
        yield
    finally:
        for handlers in routes:
            for method, handler in list(handlers.items()):
                if handler is insert:
                    handlers[method] = original
