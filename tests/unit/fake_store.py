"""An in-memory object store that enforces version preconditions, like GCS and S3 do.

gcp-storage-emulator ignores ``if_generation_match``, so the publish protocol's claim and
pointer logic is tested against this fake (and, for s3://, against moto's server, which
enforces ``If-None-Match``/``If-Match``: tests/s3); every other call is also tested against
the emulator (tests/gcs). It can fail chosen calls, to test what a failure midway leaves.
Its version tokens are integers, like GCS generations; ``0`` or ``None`` means "must not exist".
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

from tunepipe.storage.objectstore import PreconditionFailed


class FakeStore:
    """Objects as ``{name: (bytes, generation)}`` behind one lock; generations only increase."""

    def __init__(self, fail: Callable[[str, str], None] | None = None) -> None:
        self.objects: dict[str, tuple[bytes, int]] = {}
        self.lock = threading.Lock()
        self.generations = itertools.count(1)
        self.fail = fail or (lambda operation, key: None)
        self.calls: list[tuple[str, str]] = []

    def _enter(self, operation: str, key: str) -> None:
        self.calls.append((operation, key))
        self.fail(operation, key)

    def upload_file(self, key: str, path: Path) -> None:
        self._enter("upload_file", key)
        with self.lock:
            self.objects[key] = (path.read_bytes(), next(self.generations))

    def read(self, key: str) -> tuple[bytes, int] | None:
        self._enter("read", key)
        with self.lock:
            return self.objects.get(key)

    def write_if_generation(self, key: str, data: bytes, generation: int | str | None) -> int:
        self._enter("write_if_generation", key)
        with self.lock:
            current = self.objects.get(key, (b"", 0))[1]
            if current != (generation or 0):
                raise PreconditionFailed(f"{key}: generation {current}, expected {generation}")
            new = next(self.generations)
            self.objects[key] = (data, new)
            return new

    def list(self, prefix: str) -> list[str]:
        self._enter("list", prefix)
        with self.lock:
            return sorted(name for name in self.objects if name.startswith(prefix))

    def copy(self, source: str, target: str) -> None:
        self._enter("copy", target)
        with self.lock:
            self.objects[target] = (self.objects[source][0], next(self.generations))

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        with self.lock:
            self.objects.pop(key, None)

    def download_file(self, key: str, path: Path) -> None:
        self._enter("download_file", key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.objects[key][0])
