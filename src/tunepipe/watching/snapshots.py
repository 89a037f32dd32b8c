"""The snapshots under a watched location, and which of them are complete.

A watched location (a local folder, ``gs://bucket/prefix`` or ``s3://bucket/prefix``) holds one
sub-folder per snapshot of the data, as writers lay them out: ``.../2026-12-04/`` from a nightly
export, ``.../date=2026-12-04/`` from Spark. Names starting with ``_`` or ``.`` are not snapshots
(Hadoop's convention for markers and metadata; the watcher's own records live in
``_tunepipe_watch/``), nor are files directly under the location.

A snapshot is complete when its marker file is there (``_SUCCESS`` by default: what Spark and
Hadoop write last), or, for writers that write none, when its listing (names, sizes and
versions) has not changed for a quiet period, as seen by this watcher over its polls. Only the
listing is read, never the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe.data.sources import data_store, local_files
from tunepipe.errors import DataError
from tunepipe.storage.objectstore import ObjectMissing, RetryPolicy
from tunepipe.storage.stores import is_remote, parse

DEFAULT_MARKER = "_SUCCESS"
HIDDEN_PREFIXES = ("_", ".")

# One file of a snapshot as the listing shows it: relative name, size, version (GCS generation,
# S3 ETag, local modification time in ns). Any change to any of them is a change of the snapshot.
Entry = tuple[str, int, str]


@dataclass(frozen=True)
class Snapshot:
    """One sub-folder of the watched location, as one listing saw it.

    Attributes:
        name: The sub-folder's name (``2026-12-04``).
        uri: Its URI or local path: the run's ``data_uri``.
        entries: Its files (relative name, size, version), sorted by name.
    """

    name: str
    uri: str
    entries: tuple[Entry, ...]

    def has(self, marker: str) -> bool:
        """Whether the marker file lies directly in the snapshot."""
        return any(entry[0] == marker for entry in self.entries)


def _grouped(entries: list[tuple[str, int, str]]) -> dict[str, list[Entry]]:
    """Files below the location, ``sub-folder/rest``, grouped by visible sub-folder."""
    groups: dict[str, list[Entry]] = {}
    for name, size, version in entries:
        top, slash, rest = name.partition("/")
        if slash and rest and not top.startswith(HIDDEN_PREFIXES):
            groups.setdefault(top, []).append((rest, size, version))
    return groups


def list_snapshots(location: str, client: Any = None, retry: RetryPolicy | None = None) -> list[Snapshot]:
    """Every snapshot under ``location``, by name; a prefix or folder that does not exist yet holds none.

    Raises:
        DataError: The bucket does not exist.
        ObjectStoreError: The listing was refused or kept failing after retries.
    """
    if is_remote(location):
        parsed = parse(location)
        prefix = parsed.key.rstrip("/") + "/" if parsed.key else ""
        try:
            objects = data_store(location, client, retry).list_objects(prefix)
        except ObjectMissing as error:  # the bucket itself: a mistake, not "no data yet"
            raise DataError(f"{location}: {error}") from None
        listed = [(info.name[len(prefix):], info.size, str(info.version)) for info in objects]
        base = location.rstrip("/")
    else:
        root = Path(location)
        if not root.is_dir():
            return []
        listed = []
        for path in local_files(root):
            stat = path.stat()
            listed.append((path.relative_to(root).as_posix(), stat.st_size, str(stat.st_mtime_ns)))
        base = str(root)
    groups = _grouped(listed)
    return [Snapshot(name, f"{base}/{name}", tuple(sorted(groups[name]))) for name in sorted(groups)]


@dataclass
class Completeness:
    """Decides which snapshots are complete: by marker, or by a quiet period without one.

    Args:
        marker: The marker file's name (default ``_SUCCESS``); ``None`` decides by quiet period.
        quiet_seconds: Without a marker, how long a snapshot's listing must stay unchanged
            (default 300 s: longer than a pause between two files of one upload).
        clock: Seconds, monotonic; tests pass their own.
    """

    marker: str | None = DEFAULT_MARKER
    quiet_seconds: float = 300.0
    clock: Callable[[], float] = field(default=time.monotonic)
    _seen: dict[str, tuple[tuple[Entry, ...], float]] = field(default_factory=dict)

    def complete(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` is complete now (quiet mode: remembers when its listing last changed)."""
        if self.marker is not None:
            return snapshot.has(self.marker)
        now = self.clock()
        entries, since = self._seen.get(snapshot.name, (None, now))
        if entries != snapshot.entries:
            self._seen[snapshot.name] = (snapshot.entries, now)
            return self.quiet_seconds <= 0
        return now - since >= self.quiet_seconds

    def waiting_for(self, snapshot: Snapshot) -> str:
        """Why an incomplete snapshot is not run yet, for the log."""
        if self.marker is not None:
            return f"no {self.marker} marker yet"
        since = self._seen[snapshot.name][1]
        return f"listing unchanged for {self.clock() - since:.0f} s of {self.quiet_seconds:g} s"
