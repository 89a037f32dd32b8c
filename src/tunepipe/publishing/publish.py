"""Publish a staged model folder as the next version, then move the champion pointer.

Layout under ``<export_root>/<model_name>/``: integer version folders (``1/``, ``2/``, ...)
and ``CHAMPION``, a small JSON naming the current version with the SHA-256 of its model card
(whose ``files`` list the SHA-256 of every file of the version). Readers read ``CHAMPION``
first, then the version it names; a version is complete once its model card
(``assets.extra/model_card.json``, :mod:`tunepipe.publishing.layout`) exists.

Two protocols, one guarantee: a version appears whole or not at all, two concurrent
publishers never get the same version, and the pointer is replaced last, atomically, never
moves to a lower version, and only ever names a complete, verified version.

- Local folder: files are staged in a hidden folder beside the versions, checked against
  their checksums, then renamed to the next free number (``rename`` fails if it exists); the
  pointer is replaced with ``os.replace`` under an exclusive ``flock``.
- Object store (gs://, s3://): files are uploaded under ``.tmp-<token>/`` and their checksum
  checked (GCS CRC32C, S3 SHA-256); the version is claimed by creating ``.claims/<version>``
  only if it does not exist (GCS ``if_generation_match=0``, S3 ``If-None-Match: *``); files are
  copied into ``<version>/``, model card last; the pointer is replaced only if its version
  token is still the one read (GCS generation, S3 ``If-Match: <ETag>``), re-read and retried
  when another run wins.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.errors import ExportError, TunepipeError
from tunepipe.publishing import layout
from tunepipe.reports import modelcard
from tunepipe.storage.hashing import sha256_bytes, sha256_file
from tunepipe.storage.objectstore import ObjectStore, PreconditionFailed, VersionToken

log = logging.getLogger(__name__)

CLAIMS_DIR = ".claims"
TMP_PREFIX = ".tmp-"
STAGING_PREFIX = ".staging-"
LOCK_FILE = ".champion.lock"
# Bounds on the optimistic loops: each lost race means another version was published.
MAX_CLAIM_ATTEMPTS = 100
MAX_POINTER_ATTEMPTS = 20

# Renders the model card files for a version, given the checksums of the other files.
CardRenderer = Callable[[int, dict[str, Any]], dict[str, bytes]]


@dataclass(frozen=True)
class Champion:
    """What the champion pointer says: the current version and its model card's checksum."""

    version: int
    model_card_sha256: str
    updated: str

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> Champion:
        try:
            raw = json.loads(data)
            return cls(int(raw["version"]), str(raw["model_card_sha256"]), str(raw["updated"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ExportError(f"{where}: not a valid champion pointer ({error})") from None


def manifest(folder: Path) -> dict[str, Any]:
    """``{relative path: {"sha256", "bytes"}}`` of every file under ``folder``, sorted."""
    return {
        path.relative_to(folder).as_posix(): {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def verify_manifest(folder: Path, expected: dict[str, Any], written: set[str] | None = None) -> None:
    """Raises :class:`ExportError` unless ``folder`` holds exactly the files of ``expected``
    (plus the ``written`` ones, just rendered), with the same SHA-256."""
    found = {name: entry for name, entry in manifest(folder).items() if name not in (written or set())}
    if found.keys() != expected.keys():
        raise ExportError(f"{folder}: files changed while publishing: {sorted(found.keys() ^ expected.keys())}")
    for name, entry in expected.items():
        if found[name]["sha256"] != entry["sha256"]:
            raise ExportError(f"{folder / name}: checksum mismatch while publishing")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- local folders -------------------------------------------------------------------------


def local_versions(model_dir: Path) -> list[int]:
    """Published version numbers, ascending; staging folders and other names are ignored."""
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit())


def read_local_champion(model_dir: Path) -> Champion | None:
    pointer = model_dir / artifacts.CHAMPION_FILE
    return Champion.parse(pointer.read_bytes(), str(pointer)) if pointer.is_file() else None


def publish_local(staged: Path, model_dir: Path, render: CardRenderer) -> int:
    """Renames ``staged`` (a folder inside ``model_dir``) to the next free version.

    The model card files are written into ``staged`` for each version tried; the other files
    are checked against their checksums just before the rename. Returns the version.
    """
    files = manifest(staged)
    while True:
        version = (local_versions(model_dir) or [0])[-1] + 1
        cards = render(version, files)
        for name, data in cards.items():
            (staged / name).write_bytes(data)
        verify_manifest(staged, files, written=set(cards))
        try:
            os.rename(staged, model_dir / str(version))
        except OSError:
            if not (model_dir / str(version)).exists():
                raise
            continue  # a concurrent export took this number: try the next one
        update_local_champion(model_dir, version)
        return version


def update_local_champion(model_dir: Path, version: int) -> Champion:
    """Points ``CHAMPION`` at ``version`` unless it already names a later one (under a lock)."""
    card_sha = sha256_file(model_dir / str(version) / layout.MODEL_CARD)
    with (model_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_local_champion(model_dir)
        if current is not None and current.version > version:
            log.info("export: champion stays at version %d (later than %d)", current.version, version)
            return current
        champion = Champion(version, card_sha, _now())
        temporary = model_dir / f".champion-{uuid.uuid4().hex}"
        temporary.write_bytes(champion.to_bytes())
        os.replace(temporary, model_dir / artifacts.CHAMPION_FILE)
        return champion


# ---- object stores -------------------------------------------------------------------------


def read_store_champion(store: ObjectStore, prefix: str) -> tuple[Champion, VersionToken] | None:
    """The champion pointer under ``prefix`` and its version token (generation, ETag), or ``None``."""
    found = store.read(f"{prefix}/{artifacts.CHAMPION_FILE}")
    if found is None:
        return None
    return Champion.parse(found[0], f"{prefix}/{artifacts.CHAMPION_FILE}"), found[1]


def claim_version(store: ObjectStore, prefix: str, token: str) -> int:
    """Claims the next version number by creating ``.claims/<n>`` only if it does not exist."""
    for _ in range(MAX_CLAIM_ATTEMPTS):
        claimed = [int(name.rsplit("/", 1)[1]) for name in store.list(f"{prefix}/{CLAIMS_DIR}/")
                   if name.rsplit("/", 1)[1].isdigit()]
        version = max(claimed, default=0) + 1
        key = f"{prefix}/{CLAIMS_DIR}/{version}"
        try:
            store.write_if_generation(key, token.encode(), None)
            return version
        except PreconditionFailed:
            mine = store.read(key)
            if mine is not None and mine[0] == token.encode():  # our own write, sent again by a retry
                return version
    raise ExportError(f"{prefix}: could not claim a version in {MAX_CLAIM_ATTEMPTS} attempts")


def update_store_champion(store: ObjectStore, prefix: str, version: int, card_sha: str) -> Champion:
    """Points the champion at ``version`` with a version-token precondition; re-reads on conflict."""
    key = f"{prefix}/{artifacts.CHAMPION_FILE}"
    for _ in range(MAX_POINTER_ATTEMPTS):
        current = read_store_champion(store, prefix)
        if current is not None and current[0].version > version:
            log.info("export: champion stays at version %d (later than %d)", current[0].version, version)
            return current[0]
        champion = Champion(version, card_sha, _now())
        try:
            store.write_if_generation(key, champion.to_bytes(), current[1] if current else None)
            return champion
        except PreconditionFailed:
            log.info("export: %s changed while updating it; reading it again", key)
    raise ExportError(f"{key}: could not update the champion pointer in {MAX_POINTER_ATTEMPTS} attempts")


def find_published(store: ObjectStore, prefix: str, files: dict[str, Any]) -> tuple[int, bytes] | None:
    """A complete version, the champion's or a later one, holding exactly ``files``; its card bytes.

    That is a publish of the same files that already got through the copies (its pointer update
    failed, or its answer was lost): publishing them again reuses it instead of adding a
    duplicate version. Only claimed numbers at or above the champion's are read (normally none
    or one), so the cost does not grow with the number of versions.
    """
    champion = read_store_champion(store, prefix)
    floor = champion[0].version if champion else 1
    claimed = sorted({int(name.rsplit("/", 1)[1]) for name in store.list(f"{prefix}/{CLAIMS_DIR}/")
                      if name.rsplit("/", 1)[1].isdigit()})
    for version in [number for number in claimed if number >= floor]:
        card = store.read(f"{prefix}/{version}/{layout.MODEL_CARD}")
        if card is not None and json.loads(card[0]).get(modelcard.CARD_FILES) == files:
            return version, card[0]
    return None


def publish_to_store(store: ObjectStore, prefix: str, staged: Path, render: CardRenderer) -> int:
    """Uploads ``staged`` as the next version under ``prefix``; returns the version.

    Publishing files that are already published as the champion or a later complete version
    (a re-run after a failure at the pointer step) reuses that version: no duplicate.

    Raises:
        ExportError: An upload, checksum or copy failed: the temporary prefix is removed,
            nothing is left under ``<version>/`` and the champion pointer is unchanged. Or the
            pointer could not be moved: the version is complete, and a re-run reuses it.
    """
    files = manifest(staged)
    published = find_published(store, prefix, files)
    if published is not None:
        version, card = published
        log.info("export: %s/%d already holds these files; reusing it", prefix, version)
    else:
        version, card = _upload_version(store, prefix, staged, files, render)
    try:
        update_store_champion(store, prefix, version, sha256_bytes(card))
    except TunepipeError as error:
        raise ExportError(f"{prefix}/{version} is published and complete, but the champion pointer could not be "
                          f"moved to it ({error}); publishing the same files again reuses it") from error
    return version


def _upload_version(store: ObjectStore, prefix: str, staged: Path, files: dict[str, Any],
                    render: CardRenderer) -> tuple[int, bytes]:
    """Uploads, claims and copies one new version (steps 2-6 of docs/export.md); its number and card."""
    token = uuid.uuid4().hex
    temporary = f"{prefix}/{TMP_PREFIX}{token}"
    version = 0
    try:
        for name in files:
            store.upload_file(f"{temporary}/{name}", staged / name)
        version = claim_version(store, prefix, token)
        cards = render(version, files)
        for name, data in cards.items():
            (staged / name).write_bytes(data)
            store.upload_file(f"{temporary}/{name}", staged / name)
        for name in [*files, *cards]:  # the model card last: its presence marks a complete version
            store.copy(f"{temporary}/{name}", f"{prefix}/{version}/{name}")
    except Exception as error:
        if version:
            _delete_prefix(store, f"{prefix}/{version}/")
        _delete_prefix(store, f"{temporary}/")
        raise ExportError(f"publishing to {prefix} failed, nothing was published and the champion "
                          f"pointer is unchanged: {error}") from error
    _delete_prefix(store, f"{temporary}/")
    return version, cards[layout.MODEL_CARD]


def _delete_prefix(store: ObjectStore, prefix: str) -> None:
    try:
        for name in store.list(prefix):
            store.delete(name)
    except Exception as error:  # cleanup is best effort: the publish error matters more
        log.warning("export: could not remove %s: %s", prefix, error)
