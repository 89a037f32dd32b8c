"""The record that makes each snapshot start exactly one run.

One small JSON object per snapshot, named after its fingerprint, in the watcher's state folder
(``<location>/_tunepipe_watch/snapshots/`` by default). A watcher *claims* a snapshot by
creating its record with a create-only write: on an object store a conditional write that
succeeds only if the object does not exist (GCS ``ifGenerationMatch=0``, S3 ``If-None-Match:
*``), on a local folder ``O_CREAT | O_EXCL`` under an ``flock``. Only the watcher whose write
succeeded starts the run; it then links the run id into the record with a write conditional on
the version it created. Every later change is conditional the same way, so two watchers never
both act on one record.

A claim whose watcher died before linking a run is taken over (:class:`Slot.holder_gone`):
on a local folder as soon as its ``flock`` is free (the kernel drops it when its holder dies,
SIGKILL included); on an object store once its lease has run out, because another machine cannot
tell a dead watcher from a slow one. Before taking over, the watcher looks the run up by its
deterministic name, so a watcher killed between starting the run and linking it is never
followed by a second run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tunepipe.storage.objectstore import ListingStore, PreconditionFailed, RetryPolicy, VersionToken
from tunepipe.storage.stores import is_remote, parse, store_for

STATE_FOLDER = "_tunepipe_watch"
CLAIMED, STARTED, REFUSED, SKIPPED = "claimed", "started", "refused", "skipped"
# Default lease of a claim on an object store: far longer than a submit takes (seconds), short
# enough that a snapshot whose watcher died between claiming and submitting waits minutes, not hours.
DEFAULT_LEASE_SECONDS = 600.0


@dataclass(frozen=True)
class Record:
    """What the watchers know about one snapshot.

    Attributes:
        fingerprint: The snapshot's content fingerprint (the fingerprint step's).
        snapshot: Its URI or path when it was claimed.
        run_name: The deterministic name of its run (looked up after a crash).
        state: ``claimed`` (a watcher is starting its run), ``started`` (``run_id`` is its run),
            ``refused`` (its schema drifted fatally from the champion's: no run) or ``skipped``
            (complete when the watcher started with ``--skip-existing``: no run).
        watcher: Who claimed it last (``name/process-id``).
        claimed_at: When, in seconds since the epoch (the lease counts from here).
        run_id: The run, once started.
        detail: Why it was refused or skipped, or where the run is.
    """

    fingerprint: str
    snapshot: str
    run_name: str
    state: str
    watcher: str
    claimed_at: float
    run_id: str | None = None
    detail: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def parse(cls, data: bytes) -> Record:
        return cls(**json.loads(data))

    def finished(self, state: str, run_id: str | None = None, detail: str | None = None) -> Record:
        return replace(self, state=state, run_id=run_id, detail=detail)


def record_name(fingerprint: str) -> str:
    """``gcs:3fa9...`` -> ``gcs-3fa9....json``: one object per fingerprint, safe in any store."""
    return fingerprint.replace(":", "-") + ".json"


class Slot(Protocol):
    """One snapshot's record, open for conditional reads and writes."""

    def create(self, record: Record) -> VersionToken:
        """Writes ``record`` only if none exists; raises PreconditionFailed otherwise."""

    def read(self) -> tuple[Record, VersionToken]:
        """The record as it is now and its version."""

    def replace(self, record: Record, token: VersionToken) -> VersionToken:
        """Writes ``record`` only if the record is still at version ``token``; raises PreconditionFailed."""

    def holder_gone(self, record: Record, now: float) -> bool:
        """Whether the watcher that claimed ``record`` can no longer be working on it."""


class Records(Protocol):
    """Where the records live."""

    where: str

    def slot(self, fingerprint: str) -> contextlib.AbstractContextManager[Slot | None]:
        """The fingerprint's slot, or ``None`` while a live watcher holds it (local folders only)."""


# ---- object stores -----------------------------------------------------------------------------


@dataclass
class StoreSlot:
    store: ListingStore
    key: str
    lease_seconds: float

    def create(self, record: Record) -> VersionToken:
        return self.store.write_if_generation(self.key, record.to_bytes(), 0)

    def read(self) -> tuple[Record, VersionToken]:
        found = self.store.read(self.key)
        if found is None:  # deleted by hand since the create failed: treat as a lost race
            raise PreconditionFailed(f"{self.store.uri(self.key)} disappeared")
        return Record.parse(found[0]), found[1]

    def replace(self, record: Record, token: VersionToken) -> VersionToken:
        return self.store.write_if_generation(self.key, record.to_bytes(), token)

    def holder_gone(self, record: Record, now: float) -> bool:
        return now - record.claimed_at > self.lease_seconds


@dataclass
class StoreRecords:
    """Records in an object store (``gs://``, ``s3://``), claims held by a lease.

    Args:
        uri: The state folder, e.g. ``gs://bucket/data/_tunepipe_watch``.
        lease_seconds: How long a claim without a run stays with its watcher (default 600 s).
        client: The store's client (default: from the environment's credentials).
        retry: The store's retry policy (default :class:`RetryPolicy`).
    """

    uri: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    client: Any = None
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        parsed = parse(self.uri)
        self.store = store_for(parsed, self.client, self.retry)
        self.prefix = parsed.key.rstrip("/")
        self.where = self.uri

    @contextlib.contextmanager
    def slot(self, fingerprint: str) -> Iterator[Slot | None]:
        yield StoreSlot(self.store, f"{self.prefix}/snapshots/{record_name(fingerprint)}", self.lease_seconds)


# ---- local folders ------------------------------------------------------------------------------


@dataclass
class LocalSlot:
    path: Path

    def create(self, record: Record) -> VersionToken:
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise PreconditionFailed(f"{self.path} exists") from None
        with os.fdopen(descriptor, "wb") as handle:  # a crash here leaves a torn record: read() says so
            handle.write(record.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        return 1

    def read(self) -> tuple[Record, VersionToken]:
        try:
            return Record.parse(self.path.read_bytes()), 1
        except (ValueError, TypeError):  # torn by a crash in create: the claim never got further
            return Record("", "", "", CLAIMED, "(torn record)", 0.0), 1

    def replace(self, record: Record, token: VersionToken) -> VersionToken:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_bytes(record.to_bytes())
        os.replace(temporary, self.path)  # we hold the flock: nobody else writes this record
        return 1

    def holder_gone(self, record: Record, now: float) -> bool:
        return True  # we hold the flock, so whoever claimed it before has died


@dataclass
class LocalRecords:
    """Records in a local folder; a claim is held by ``flock`` on a lock file beside it, which
    the kernel drops when the holder dies. The folder must be on a local disk (``flock`` over
    NFS is not reliable)."""

    folder: Path

    def __post_init__(self) -> None:
        self.where = str(self.folder)

    @contextlib.contextmanager
    def slot(self, fingerprint: str) -> Iterator[Slot | None]:
        folder = self.folder / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        name = record_name(fingerprint)
        with (folder / f".{name}.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield LocalSlot(folder / name)


def records_for(location: str, state: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                client: Any = None, retry: RetryPolicy | None = None) -> Records:
    """The records of a watched location: in ``state`` if given, else in its ``_tunepipe_watch``."""
    where = state or f"{location.rstrip('/')}/{STATE_FOLDER}"
    if is_remote(where):
        return StoreRecords(where, lease_seconds, client, retry)
    return LocalRecords(Path(where))


def now() -> float:
    """Seconds since the epoch: claims are compared across machines (their clocks kept by NTP)."""
    return time.time()


Clock = Callable[[], float]
