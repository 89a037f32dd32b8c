"""An in-memory object store that enforces version preconditions, like GCS and S3 do.

:class:`MemoryStore` makes it a whole store, ``mem://<bucket>/<key>``, with its scheme row
(:data:`SCHEME`): what a new store's module holds. A test that adds the row to the scheme table
reads, publishes and mirrors through tunepipe's generic paths with no other module changed
(tests/unit/test_storage_seam.py).

The publish protocol's claim and pointer logic is tested against this fake in the unit tier, and
against the real servers in the store-contract suite (tests/stores: moto enforces
``If-None-Match``/``If-Match``, the GCS emulator ``ifGenerationMatch`` once wrapped). It can fail
chosen calls, to test what a failure midway leaves.
Its version tokens are integers, like GCS generations; ``0`` or ``None`` means "must not exist".
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunepipe.errors import TunepipeError
from tunepipe.storage.objectstore import ObjectInfo, ObjectMissing, PreconditionFailed, RetryPolicy, Scheme, uri_of


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


class MemoryClient:
    """The buckets of one in-memory service, shared by every store built on it (as one endpoint is)."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.lock = threading.Lock()
        self.generations = itertools.count(1)


class MemoryStore(FakeStore):
    """One bucket of a :class:`MemoryClient`: the whole ListingStore protocol, every call through ``retry``."""

    def __init__(self, bucket: str, client: MemoryClient, retry: RetryPolicy | None = None) -> None:
        super().__init__()
        self.name, self.client, self.retry = bucket, client, retry or RetryPolicy()
        self.objects = client.buckets.setdefault(bucket, {})
        self.lock, self.generations = client.lock, client.generations

    def uri(self, key: str) -> str:
        return uri_of(SCHEME.name, self.name, key)

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        with self.lock:
            return [ObjectInfo(name, len(data), generation, None) for name, (data, generation)
                    in sorted(self.objects.items()) if name.startswith(prefix)]

    def download_file(self, key: str, path: Path, version: int | str | None = None) -> None:
        self._enter("download_file", key)
        found = self.objects.get(key)
        if found is None or (version is not None and found[1] != version):
            raise ObjectMissing(f"{self.uri(key)}: no such object (at the version listed)")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        partial.write_bytes(found[0])
        os.replace(partial, path)


# The service the default client reaches: what "the environment's credentials" find for mem://.
SERVICE = MemoryClient()


def memory_client(error: type[TunepipeError]) -> Any:
    return SERVICE


def memory_bucket_problem(name: str) -> str | None:
    return None if name.isalnum() and name.islower() else "must hold only lowercase letters and digits"


SCHEME = Scheme(name="mem", service="in-memory store (tests)", fingerprint_tag="mem",
                bucket_problem=memory_bucket_problem, store=MemoryStore, client=memory_client)
