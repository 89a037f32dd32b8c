"""What every object store offers, its scheme row, and the one retry policy: the neutral base of the stores.

:class:`ObjectStore` is the narrow interface every object store offers: just what the publish
protocol (:mod:`tunepipe.publishing.publish`), the data readers (:mod:`tunepipe.data.sources`)
and the tuner-state mirror (:mod:`tunepipe.storage.tuner_state`) need: upload a file and verify
its checksum, read an object with a version token, create or replace an object only if its
version is still the one read, list, copy, delete and download. Each store is one module that
implements it and declares its :class:`Scheme` row (:mod:`tunepipe.storage.gcs`: the token is
the generation; :mod:`tunepipe.storage.s3`: the ETag); the scheme table
(:mod:`tunepipe.storage.locations`) lists the rows, and :mod:`tunepipe.storage.stores` alone
decides which store serves a URI. Credentials come from each library's default chain; none are
ever named in code.

Every call goes through one :class:`RetryPolicy`: transient errors (HTTP 429 and 5xx,
connection resets, answers cut off) are retried with bounded, jittered exponential backoff
under a deadline; permanent ones (403, 400...) are not. Each store tells the policy which of
its library's errors are which (its row's classifier; :func:`classify_builtin` where none is
given); the libraries' own retries are switched off so that this one policy, tested here,
decides. When it gives up, or a request is refused, one
:class:`~tunepipe.errors.ObjectStoreError` names the operation, the store URI and the last
cause. The policy is documented in docs/export.md ("Retries").
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tunepipe.errors import ObjectStoreError, RetriesExhausted, TunepipeError

log = logging.getLogger(__name__)
T = TypeVar("T")

# What read returns with an object's bytes and write_if_generation expects back: GCS's generation
# (an int), S3's ETag (a str). Opaque to callers, compared only by the store.
VersionToken = int | str
# How a store's classifier sorts an error for RetryPolicy.call.
TRANSIENT, REFUSED, EXPECTED = "transient", "refused", "expected"
Classifier = Callable[[BaseException], str | None]


class PreconditionFailed(Exception):
    """A conditional write's precondition did not hold: someone else wrote the object first."""


class ObjectMissing(ObjectStoreError):
    """The object (at the version asked for) is not there: never written, deleted, or replaced."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a listing.

    Attributes:
        name: Object name (key).
        size: Bytes.
        version: The token that :meth:`ListingStore.download_file` takes to download exactly
            this content (GCS: generation; S3: ETag).
        checksum: The store's content checksum (GCS: base64 MD5; S3: the ETag without quotes,
            the MD5 of a single-part upload); ``None`` if the store gives none.
    """

    name: str
    size: int
    version: VersionToken
    checksum: str | None


def classify_builtin(error: BaseException) -> str | None:
    """The classification every store shares: Python's own connection errors (reset, refused,
    aborted) are worth another attempt; anything else is not a store error (``None``)."""
    return TRANSIENT if isinstance(error, ConnectionError) else None


def ip_address_problem(name: str) -> str | None:
    """The bucket naming rule GCS and S3 share: a bucket name must not be an IP address."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return "must not be an IP address"


def uri_of(scheme: str, bucket: str, key: str) -> str:
    """``<scheme>://<bucket>/<key>``: how a store names one of its objects in messages."""
    return f"{scheme}://{bucket}/{key}"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient object-store errors.

    Defaults: 6 attempts, waiting about 0.5, 1, 2, 4 and 8 s between them (15.5 s at most), and
    no new attempt once 60 s have passed since the first: that rides out GCS's and S3's documented
    429/503 bursts without hiding a real outage for long. Each wait is shortened by a random
    fraction up to ``jitter`` (default 20 %) so that parallel workers do not retry in lockstep.
    Tests pass ``sleep`` (and ``jitter=0``) to run without waiting.
    """

    attempts: int = 6
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.2
    deadline: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delays(self) -> list[float]:
        """The nominal waits between attempts, in seconds (before jitter)."""
        return [min(self.initial_delay * self.multiplier**n, self.max_delay) for n in range(self.attempts - 1)]

    def call(self, what: str, operation: Callable[[], T], classify: Classifier = classify_builtin) -> T:
        """Runs ``operation``, retrying transient errors.

        Args:
            what: The operation and its store URI, for logs and the error
                (e.g. ``"download of gs://b/x"``).
            operation: The request; it must be safe to send again.
            classify: Sorts the store library's errors into ``TRANSIENT`` (retried),
                ``REFUSED`` (not retried), ``EXPECTED`` (an answer the caller acts on, passed
                through) or ``None`` (not a store error, passed through). Default:
                :func:`classify_builtin` (Python's own connection errors and timeouts); each store
                passes its own (its scheme row's ``classify``).

        Raises:
            RetriesExhausted: Still failing after the last attempt or past the deadline.
            ObjectStoreError: A permanent error (not retried). Expected answers
                (GCS ``NotFound`` and ``PreconditionFailed``, S3 404 and 412) pass through.
        """
        started = self.clock()
        for attempt, delay in enumerate([*self.delays(), None], start=1):
            try:
                result = operation()
            except Exception as error:
                kind = classify(error)
                if kind == REFUSED:
                    raise ObjectStoreError(f"{what} was refused (not retried): {error!r}") from error
                if kind != TRANSIENT:
                    raise
                elapsed = self.clock() - started
                wait = None if delay is None else delay * (1.0 - self.jitter * self.random())
                if wait is None or elapsed + wait > self.deadline:
                    raise RetriesExhausted(f"{what} failed after {attempt} attempt(s) in {elapsed:.1f} s "
                                           f"(transient errors, retries exhausted); last error: {error!r}") from error
                log.warning("objectstore: %s failed (%r), attempt %d of %d; retrying in %.2f s",
                            what, error, attempt, self.attempts, wait)
                self.sleep(wait)
            else:
                if attempt > 1:
                    log.info("objectstore: %s succeeded on attempt %d of %d", what, attempt, self.attempts)
                return result
        raise AssertionError("unreachable")  # pragma: no cover


class ObjectStore(Protocol):
    """What the publish protocol and the tuner-state mirror need from an object store.

    Keys are object names. ``read`` returns an object's bytes with its version token, read in
    one request so that they belong together; ``write_if_generation`` writes only if the
    object's token is still ``generation`` (``0`` or ``None``: only if it does not exist) and
    raises :class:`PreconditionFailed` otherwise.
    """

    def upload_file(self, key: str, path: Path) -> None: ...
    def read(self, key: str) -> tuple[bytes, VersionToken] | None: ...
    def write_if_generation(self, key: str, data: bytes, generation: VersionToken | None) -> VersionToken: ...
    def list(self, prefix: str) -> list[str]: ...
    def copy(self, source: str, target: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def download_file(self, key: str, path: Path) -> None: ...


class ListingStore(ObjectStore, Protocol):
    """An :class:`ObjectStore` that also lists sizes and versions and names its URIs (data sources).

    ``download_file(key, path, version)`` downloads exactly ``version`` (from
    :meth:`list_objects`), raising :class:`ObjectMissing` if it was replaced or deleted since.
    """

    retry: RetryPolicy
    client: Any

    def uri(self, key: str) -> str: ...
    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...
    def download_file(self, key: str, path: Path, version: VersionToken | None = None) -> None: ...


@dataclass(frozen=True)
class Scheme:
    """One row of the scheme table: everything tunepipe needs to know to use one object store.

    A store is one module that defines its store class and this row; the row is listed in
    :data:`tunepipe.storage.locations.SCHEMES`, and nothing else names the store.

    Attributes:
        name: The URI scheme without ``://`` (``gs``).
        service: The store's name in messages.
        fingerprint_tag: Prefix of a data fingerprint over this store's listing (``gcs`` keeps
            the fingerprints of existing gs:// data, and so their cache keys, unchanged).
        bucket_problem: Why a bucket name breaks the store's naming rules, or ``None`` for a
            valid one (the location check refuses a URI naming an invalid bucket).
        store: Builds the store of one bucket: ``store(bucket, client, retry)``.
        client: Builds the store's client from the environment's credentials, as the store's
            library finds them: ``client(error_type)``, raising ``error_type`` when it cannot.
        classify: Sorts the store library's errors for :meth:`RetryPolicy.call`.
        shares_through_tensorflow: Whether TensorFlow's own file system (``tf.io.gfile``) reads
            and writes the store's URIs directly (default no), as pods sharing a tuner
            directory need.
    """

    name: str
    service: str
    fingerprint_tag: str
    bucket_problem: Callable[[str], str | None]
    store: Callable[[str, Any, RetryPolicy | None], ListingStore]
    client: Callable[[type[TunepipeError]], Any]
    classify: Classifier = field(default=classify_builtin)
    shares_through_tensorflow: bool = False
