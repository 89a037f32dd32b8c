"""Where Keras Tuner keeps its state, and how it reaches the object store.

A search is resumable only if a re-run finds the same directory: :func:`tuner_directory`
derives it from the model name, the data fingerprint and a hash of everything that shapes the
search (search space, Hyperband budget, objective, seed), never from the run. Keras Tuner then
reloads it with ``overwrite=False``: completed trials are kept and only unfinished work runs.

Keras Tuner writes through ``tf.io.gfile`` only on the TensorFlow backend, so an object-store
root (``gs://``, ``s3://``) is not handed to it directly: the tuner works in a local folder that
a :class:`TunerStateSync` fills from the store before the search and mirrors back after every
trial. A local root needs no mirror; :class:`FolderSync` exists for tests and for roots on a
mounted volume where the working copy should be local.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tunepipe.errors import ConfigError, TuningError
from tunepipe.storage import atomic
from tunepipe.storage.objectstore import ObjectStore
from tunepipe.storage.stores import is_remote, parse, store_for
from tunepipe.storage.uris import check_location

# The project folder Keras Tuner creates inside the tuner directory.
PROJECT_NAME = "hyperband"


def search_key(search_space: dict[str, Any], tuning: dict[str, Any], seed: int, problem: str = "",
               sample: str = "") -> str:
    """16 hex digits of SHA-256 over a canonical JSON of what defines one search.

    Args:
        search_space: The search space as plain values (``SearchSpace.model_dump()``).
        tuning: Budget and objective: ``max_epochs``, ``factor``, ``hyperband_iterations``,
            ``objective`` (other keys are ignored: patience or the backend do not change which
            trials the oracle schedules, so changing them still resumes).
        seed: The tuner's seed.
        problem: Hash of the preprocessing specification (label, task, classes, statistics,
            image size, augmentation): the same file with another label or encoding is another
            search, never a resumed one.
        sample: The rows searched on when a sample left some out (``tuning.sample_rows``: how many
            of each split were kept, canonical JSON); empty when every row is searched on, which
            keeps the key of a search that never sampled what it was before sampling existed.
    """
    budget = {key: tuning[key] for key in ("max_epochs", "factor", "hyperband_iterations", "objective")}
    defined: dict[str, Any] = {"space": search_space, "budget": budget, "seed": seed, "problem": problem}
    if sample:
        defined["sample"] = sample
    canonical = json.dumps(defined, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def tuner_directory(tuner_root: str, model_name: str, fingerprint: str, key: str) -> str:
    """``<tuner_root>/<model_name>/<fingerprint>-<key>``; the fingerprint's ``sha256:`` prefix is dropped.

    The first 16 hex digits of the fingerprint are kept: enough to tell datasets apart and short
    enough for object names.
    """
    if not fingerprint:
        raise ConfigError("a data fingerprint is needed to place the tuner state (got an empty one)")
    digest = fingerprint.split(":", 1)[-1][:16]
    return f"{tuner_root.rstrip('/')}/{model_name}/{digest}-{key}"


def writes_in_place(path: str) -> bool:
    """Whether Keras Tuner's own writer is kept for ``path``: a URI (``gs://``), whose object store
    already writes all or nothing; a local file is replaced whole instead (:func:`write_state_json`)."""
    return "://" in str(path)


def write_state_json(path: str, state: Any) -> None:
    """Writes a Keras Tuner state as JSON, replacing the local file whole (:mod:`tunepipe.storage.atomic`).

    Keras Tuner writes ``oracle.json``, ``tuner0.json`` and every ``trial.json`` in place: a kill
    mid-write (which the whole-run kill drill hit) leaves an empty or truncated file, and the resumed
    search fails to reload it. The JSON is the one Keras Tuner writes (``json.dumps`` of ``get_state()``).
    ``trial_<id>/build_config.json`` keeps Keras Tuner's writer: it is written inside a trial, before
    the trial counts as complete, so a kill mid-write leaves a trial the resumed search runs again.
    """
    atomic.write_text(path, json.dumps(state))



class TunerStateSync(Protocol):
    """Mirrors a local tuner folder to and from a remote location."""

    remote: str

    def download_all(self, local_dir: Path) -> int:
        """Copies every remote file into ``local_dir``; returns how many."""

    def upload_changed(self, local_dir: Path) -> int:
        """Copies files of ``local_dir`` that changed since the last transfer; returns how many."""


def _snapshot(local_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(local_dir)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(local_dir.rglob("*"))
        if path.is_file()
    }


@dataclass
class FolderSync:
    """Mirror to a folder (a local path or a mounted volume), written file by file atomically.

    Attributes:
        remote: The mirror folder.
    """

    remote: str
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)

    def download_all(self, local_dir: Path) -> int:
        source = Path(self.remote)
        count = 0
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and not path.name.startswith(".tmp-"):
                    target = local_dir / path.relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    count += 1
        self._seen = _snapshot(local_dir)
        return count

    def upload_changed(self, local_dir: Path) -> int:
        current = _snapshot(local_dir)
        changed = [name for name, stamp in current.items() if self._seen.get(name) != stamp]
        for name in changed:
            target = Path(self.remote) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".tmp-{target.name}")
            shutil.copy2(local_dir / name, partial)
            os.replace(partial, target)  # a reader never sees half a file
        self._seen = current
        return len(changed)


@dataclass
class StoreSync:
    """Mirror to an object-store prefix (``gs://`` or ``s3://``) through any :class:`ObjectStore`.

    Every request goes through the store's retry policy (docs/export.md "Retries"); each object
    is uploaded whole or not at all and its checksum checked, each downloaded file appears whole
    or not at all. A file is marked as mirrored only once its upload succeeded, so after a
    failure the next :meth:`upload_changed` sends exactly what is still missing.

    Attributes:
        remote: ``gs://bucket/prefix`` or ``s3://bucket/prefix``.
        store: The store of ``remote``'s bucket (anything with ``list``, ``upload_file`` and
            ``download_file``); ``None`` asks :func:`tunepipe.storage.stores.store_for` on first
            use (the environment's credentials, the default retry policy).
    """

    remote: str
    store: ObjectStore | None = None
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _store_and_prefix(self) -> tuple[ObjectStore, str]:
        location = parse(self.remote)
        if self.store is None:
            self.store = store_for(location, error=TuningError)
        return self.store, location.prefix

    def download_all(self, local_dir: Path) -> int:
        store, prefix = self._store_and_prefix()
        names = [name for name in store.list(f"{prefix}/") if not name.endswith("/")]
        for name in names:
            store.download_file(name, local_dir / name.removeprefix(f"{prefix}/"))
        self._seen = _snapshot(local_dir)
        return len(names)

    def upload_changed(self, local_dir: Path) -> int:
        store, prefix = self._store_and_prefix()
        current = _snapshot(local_dir)
        changed = [name for name, stamp in current.items() if self._seen.get(name) != stamp]
        for name in changed:
            store.upload_file(f"{prefix}/{name}", local_dir / name)
            self._seen[name] = current[name]
        return len(changed)


def state_sync_for(directory: str) -> TunerStateSync | None:
    """The mirror a tuner directory needs: :class:`StoreSync` for an object store, none for a local path."""
    checked = check_location(directory, "tuner_root: ", ConfigError, samples=False)
    if is_remote(checked):
        return StoreSync(checked)
    return None
