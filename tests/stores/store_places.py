"""The places the store-contract suite runs against, and what its tests share.

A :class:`Place` is one fresh bucket of one kind of store, or one fresh local folder, with the
ways a test reaches it behind tunepipe's back (writing, reading and listing objects with the
store's own client library, or the file system). The contract tests take a ``place`` and use
tunepipe's generic paths on ``place.root``; every kind must give the same answers:

- ``gcs``: the ``gcp-storage-emulator`` server (``STORAGE_EMULATOR_HOST``); it ignores generation
  preconditions, so tests of conditional writes run inside ``place.conditional()``, which wraps its
  upload handler to enforce them as Cloud Storage does (preconditions.py);
- ``s3``: moto's S3 server (the standard AWS environment chain); moto enforces ``If-None-Match``
  and ``If-Match`` itself, and ``place.racing_client()`` serializes conditional PutObjects for tests
  that race writers (:class:`AtomicConditionalClient`);
- ``local``: a folder, for the paths that local folders share with the stores.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.publishing import layout
from tunepipe.storage.objectstore import ListingStore, RetryPolicy
from tunepipe.storage.stores import store_for

# The kinds of place, as parameters of the ``place`` and ``remote`` fixtures (or of a test that takes
# only some of them, ``indirect=True``), each with its tier's marker.
GCS, S3, LOCAL = (pytest.param("gcs", marks=pytest.mark.gcs), pytest.param("s3", marks=pytest.mark.s3),
                  pytest.param("local", marks=pytest.mark.unit))
# Attempts of the fast retry policy the fault tests use: the faults "below the bound" number FAST_ATTEMPTS - 1.
FAST_ATTEMPTS = 4


def fast_policy() -> RetryPolicy:
    """The production retry policy with millisecond waits (jitter and deadline still on)."""
    return RetryPolicy(attempts=FAST_ATTEMPTS, initial_delay=0.005, max_delay=0.02, deadline=30.0)


def no_wait() -> RetryPolicy:
    """The production retry policy that does not sleep between attempts."""
    return RetryPolicy(sleep=lambda seconds: None)


@dataclass
class Place:
    """One bucket of one store (or a local folder), and direct access to it for the tests.

    Attributes:
        kind: ``gcs``, ``s3`` or ``local``.
        root: The location tunepipe is given: ``gs://<bucket>``, ``s3://<bucket>`` or a folder path.
        put: Writes an object (a file) with the store's own library.
        get: Reads an object's bytes with the store's own library.
        names: The object names under a prefix, sorted, with the store's own library.
        version: The store's own version token of an object (GCS generation, S3 ETag); object stores only.
        stored_checksum: The store's checksum of an object and the one it should hold for a local file
            (GCS: CRC32C; S3: SHA-256); object stores only.
        client: The store library's client (object stores only).
        fingerprint_tag: The tag of tunepipe's fingerprints over this place's data.
        conditional: A context in which the store enforces conditional writes as the real service does.
        racing_client: A client for tests that race conditional writers (S3: serialized, see the module).
    """

    kind: str
    root: str
    put: Callable[[str, bytes], None]
    get: Callable[[str], bytes]
    names: Callable[[str], list[str]]
    fingerprint_tag: str
    version: Callable[[str], Any] = lambda key: None
    stored_checksum: Callable[[str, Path], tuple[str | None, str]] = lambda key, path: (None, "")
    client: Any = None
    conditional: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    racing_client: Callable[[], Any] = field(default=lambda: None)

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    def uri(self, key: str = "") -> str:
        return f"{self.root}/{key}" if key else self.root

    def store(self, retry: RetryPolicy | None = None, client: Any = None) -> ListingStore:
        """tunepipe's store of this bucket (through the scheme table), on ``client`` or the place's own."""
        return store_for(self.root, client if client is not None else self.client, retry)


def local_place(folder: Path) -> Place:
    folder.mkdir(parents=True)

    def put(key: str, data: bytes) -> None:
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)

    def names(prefix: str) -> list[str]:
        return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                      if path.is_file() and path.relative_to(folder).as_posix().startswith(prefix))

    return Place("local", str(folder), put, lambda key: (folder / key).read_bytes(), names, "sha256")


def gcs_place(client: Any, bucket: str) -> Place:
    from preconditions import enforced

    from tunepipe.storage.gcs import crc32c_of

    handle = client.bucket(bucket)

    def names(prefix: str) -> list[str]:
        return sorted(blob.name for blob in client.list_blobs(bucket, prefix=prefix))

    return Place("gcs", f"gs://{bucket}", lambda key, data: handle.blob(key).upload_from_string(data),
                 lambda key: handle.blob(key).download_as_bytes(), names, "gcs",
                 version=lambda key: handle.get_blob(key).generation,
                 stored_checksum=lambda key, path: (handle.get_blob(key).crc32c, crc32c_of(path)),
                 client=client, conditional=enforced, racing_client=lambda: client)


def s3_place(client: Any, bucket: str) -> Place:
    def names(prefix: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stored_checksum(key: str, path: Path) -> tuple[str | None, str]:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        return head.get("ChecksumSHA256"), base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()

    return Place("s3", f"s3://{bucket}", lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
                 lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(), names, "s3",
                 version=lambda key: client.head_object(Bucket=bucket, Key=key)["ETag"],
                 stored_checksum=stored_checksum, client=client,
                 racing_client=lambda: AtomicConditionalClient(client))


class AtomicConditionalClient:
    """The real moto-backed client; conditional PutObjects are serialized.

    moto checks ``If-None-Match``/``If-Match`` on PutObject (probed: a second create-only write and a
    stale ETag both get 412), but its check and its write are two steps of a threaded server, so two
    *concurrent* conditional writes can both pass. Only ``put_object`` with ``IfMatch`` or
    ``IfNoneMatch`` takes the lock, as S3 makes each such request atomic; moto still decides whether
    the precondition holds. Every other call goes straight to the client.
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


# ---- data and models the tests write ---------------------------------------------------------


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.choice(["a", "b"], rows)})


def csv_bytes(rows: int, seed: int) -> bytes:
    return table(rows, seed).to_csv(index=False).encode()


def render(version: int, files: dict) -> dict[str, bytes]:
    """Model card files of a version, naming its other files (what the publish protocol renders)."""
    return {layout.MODEL_CARD_MD: b"# card\n",
            layout.MODEL_CARD: json.dumps({"version": version, "files": files}).encode()}


def staged(tmp_path: Path, payload: str) -> Path:
    """A staged version folder whose files hold ``payload``."""
    folder = tmp_path / f"staged-{payload}"
    (folder / artifacts.EXTRA_DIR).mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(payload.encode() * 5000)
    (folder / layout.KERAS_MODEL).write_bytes(b"keras " + payload.encode())
    return folder


# A tuner folder as Keras Tuner leaves it after one trial (a checkpoint big enough to matter).
TUNER_STATE = {
    "hyperband/oracle.json": b'{"ongoing_trials": {}}',
    "hyperband/trial_1/trial.json": b'{"status": "COMPLETED", "score": 0.5}',
    "hyperband/trial_1/checkpoint.weights.h5": bytes(range(256)) * 160,
}


def tuner_folder(root: Path) -> Path:
    """:data:`TUNER_STATE` written under ``root``."""
    for name, data in TUNER_STATE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative name."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@contextlib.contextmanager
def threads(targets: list[Callable[[], None]]) -> Iterator[list[BaseException]]:
    """Runs ``targets`` at once; yields the errors they raised once all have finished."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # reported to the test
            errors.append(error)

    running = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    yield errors
