"""Find, fetch, verify, load and warm published versions; follow the champion and swap atomically.

A version is served only once every file the model card lists has its SHA-256 (and, when it is
the champion, the card its pointer's SHA-256). Local export roots are served in place; versions
in an object store are downloaded into ``<cache_dir>/<model_name>/<version>/`` first (beside it
in a hidden folder, renamed into place once verified), and a verified cached copy is reused.

:class:`ChampionFollower` reads the pointer every ``poll_seconds``; when it names another version
the new one is loaded and warmed completely while the old one keeps answering, then one reference
is replaced: a request holds the model it started with, so none fails during a swap.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunepipe.errors import ServingError, TunepipeError
from tunepipe.publishing.layout import MODEL_CARD_PATHS, first_found, saved_model_dir
from tunepipe.publishing.publish import Champion, read_local_champion, read_store_champion
from tunepipe.reports.modelcard import CARD_FILES, CARD_SIGNATURE
from tunepipe.serving import contract as c
from tunepipe.serving.requests import Feeds
from tunepipe.storage.hashing import sha256_bytes, sha256_file
from tunepipe.storage.stores import is_remote, parse, store_for

log = logging.getLogger(__name__)
PARTIAL_PREFIX = ".partial-"


@dataclass(frozen=True)
class Wanted:
    """The version to serve and, when it is the champion, its card's SHA-256 (else ``None``)."""

    version: int
    card_sha256: str | None


def _check_files(folder: Path, card: dict[str, Any], where: str) -> None:
    files = card.get(CARD_FILES)
    if not isinstance(files, dict) or not files:
        raise ServingError(f"{where}: the model card lists no files to verify")
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise ServingError(f"{where}/{name}: missing")
        if sha256_file(path) != entry["sha256"]:
            raise ServingError(f"{where}/{name}: SHA-256 differs from the model card's")


def _parse_card(data: bytes, expected_sha: str | None, where: str) -> dict[str, Any]:
    if expected_sha is not None and sha256_bytes(data) != expected_sha:
        raise ServingError(f"{where}: model card SHA-256 differs from the champion pointer's")
    try:
        card = json.loads(data)
    except ValueError as error:
        raise ServingError(f"{where}: model card is not JSON ({error})") from None
    if not isinstance(card, dict):
        raise ServingError(f"{where}: model card is not a JSON object")
    return card


class LocalSource:
    """Versions in a local folder ``<export_root>/<model_name>``, served in place."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    def champion(self) -> Champion | None:
        return read_local_champion(self.model_dir)

    def fetch(self, wanted: Wanted) -> tuple[Path, dict[str, Any]]:
        """The verified version folder and its model card."""
        folder = self.model_dir / str(wanted.version)
        found = first_found(lambda name: (folder / name).read_bytes() if (folder / name).is_file() else None,
                            MODEL_CARD_PATHS)
        if found is None:
            raise ServingError(f"{folder}: no model card (not a published version)")
        card = _parse_card(found[1], wanted.card_sha256, str(folder / found[0]))
        _check_files(folder, card, str(folder))
        return folder, card


class StoreSource:
    """Versions under an object-store URI, downloaded into a local cache."""

    def __init__(self, uri: str, cache_dir: Path, store: Any = None) -> None:
        """``store`` (default: the one :func:`~tunepipe.storage.stores.store_for` gives) is for tests."""
        location = parse(uri, error=ServingError)
        self.store = store if store is not None else store_for(location, error=ServingError)
        self.prefix = location.prefix
        self.uri = uri
        self.cache_dir = cache_dir

    def champion(self) -> Champion | None:
        found = read_store_champion(self.store, self.prefix)
        return None if found is None else found[0]

    def fetch(self, wanted: Wanted) -> tuple[Path, dict[str, Any]]:
        """Downloads (or reuses) the version, verified against its card; the folder and the card."""
        base = f"{self.prefix}/{wanted.version}"
        found = first_found(lambda name: self.store.read(f"{base}/{name}"), MODEL_CARD_PATHS)
        if found is None:
            raise ServingError(f"{self.uri}/{wanted.version}: no model card (not a published version)")
        card_name, (data, _) = found
        card = _parse_card(data, wanted.card_sha256, f"{self.uri}/{wanted.version}/{card_name}")
        target = self.cache_dir / str(wanted.version)
        if target.is_dir():
            try:
                _check_files(target, card, str(target))
                return target, card
            except ServingError as error:
                log.warning("serve: cached copy unusable (%s); downloading again", error)
                shutil.rmtree(target)
        partial = self.cache_dir / f"{PARTIAL_PREFIX}{wanted.version}-{uuid.uuid4().hex[:8]}"
        try:
            for name in card[CARD_FILES]:
                self.store.download_file(f"{base}/{name}", partial / name)
            (partial / card_name).parent.mkdir(parents=True, exist_ok=True)
            (partial / card_name).write_bytes(data)
            _check_files(partial, card, f"{self.uri}/{wanted.version}")
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target, card


def source_for(export_root: str, model_name: str, cache_dir: Path) -> LocalSource | StoreSource:
    """Where the versions of ``model_name`` live: the local folder or the object store."""
    if is_remote(export_root):
        return StoreSource(f"{export_root.rstrip('/')}/{model_name}", cache_dir / model_name)
    return LocalSource(Path(export_root) / model_name)


class LoadedModel:
    """One version, loaded and ready to answer."""

    def __init__(self, version: int, folder: Path, card: dict[str, Any]) -> None:
        import tensorflow as tf  # the SavedModel is TensorFlow's format

        self.version, self.folder, self.card = version, folder, card
        path = folder / saved_model_dir(card) if saved_model_dir(card) else folder
        try:
            self._loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise ServingError(f"{path}: SavedModel does not load ({error})") from None
        self._signatures = dict(self._loaded.signatures)
        specs = {name: {key: c.TensorInfo(spec.dtype.name, tuple(spec.shape.as_list()))
                        for key, spec in function.structured_input_signature[1].items()}
                 for name, function in self._signatures.items()}
        try:
            self.contract = c.contract_of(specs, card.get(CARD_SIGNATURE) or {})
        except ValueError as error:
            raise ServingError(f"{path}: {error}") from None

    def predict(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Runs ``feeds.signature`` on the decoded inputs; output name -> array (one row per instance)."""
        import tensorflow as tf

        function = self._signatures[feeds.signature]
        outputs = function(**{name: tf.constant(values) for name, values in feeds.inputs.items()})
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def warm(self) -> None:
        """Calls every signature once on a synthetic row, so that the first request pays no tracing."""
        for name, inputs in self.contract.signatures.items():
            self.predict(Feeds(name, {key: _synthetic(key, info, self.contract) for key, info in inputs.items()}, 1))


def _synthetic(name: str, info: c.TensorInfo, contract: c.Contract) -> np.ndarray:
    """One row for an input: missing tabular values, a black 8x8 image."""
    if name == contract.bytes_input:
        import tensorflow as tf

        return np.asarray([tf.io.encode_png(np.zeros((8, 8, contract.channels or 3), np.uint8)).numpy()], object)
    if len(info.shape) == 4:
        return np.zeros((1, 8, 8, info.shape[-1] or 3), dtype=info.dtype)
    if info.dtype == c.STRING:
        return np.asarray([""], dtype=object)
    return np.full((1,), np.nan, dtype=info.dtype)


def load_version(source: LocalSource | StoreSource, wanted: Wanted) -> LoadedModel:
    """Fetches, verifies, loads and warms one version."""
    folder, card = source.fetch(wanted)
    model = LoadedModel(wanted.version, folder, card)
    model.warm()
    return model


class ChampionFollower:
    """Keeps the champion (or a pinned version) loaded; reloads when the pointer moves.

    Args:
        source: Where the versions live (:func:`source_for`).
        version: Serve this version only (``None``, default: the champion's, followed).
        poll_seconds: Pause between pointer reads (see :data:`~tunepipe.serving.settings.DEFAULT_POLL_SECONDS`).
    """

    def __init__(self, source: LocalSource | StoreSource, version: int | None, poll_seconds: float) -> None:
        self.source, self.version, self.poll_seconds = source, version, poll_seconds
        self.current: LoadedModel | None = None  # replaced whole; readers take one reference per request
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wanted(self) -> Wanted | None:
        """What should be served now; ``None`` while there is no champion yet."""
        if self.version is not None:
            return Wanted(self.version, None)
        champion = self.source.champion()
        return None if champion is None else Wanted(champion.version, champion.model_card_sha256)

    def refresh(self) -> bool:
        """One poll: loads and swaps in the wanted version if it differs; True if it swapped.

        Raises:
            TunepipeError: The pointer or the version cannot be read, verified or loaded; the
                current model (if any) stays.
        """
        wanted = self.wanted()
        if wanted is None or (self.current is not None and self.current.version == wanted.version):
            return False
        model = load_version(self.source, wanted)
        previous, self.current = self.current, model
        log.info("serve: now serving version %d%s", model.version,
                 f" (was {previous.version})" if previous is not None else "")
        self._forget(previous)
        return True

    def _forget(self, previous: LoadedModel | None) -> None:
        """Deletes the previous version's cached download (local versions are never touched)."""
        if previous is not None and isinstance(self.source, StoreSource):
            shutil.rmtree(previous.folder, ignore_errors=True)

    def _poll(self) -> None:
        last_error = None  # each distinct failure is logged once, not every poll
        while not self._stop.is_set():
            try:
                self.refresh()
                last_error = None
            except Exception as error:  # a failed load must not stop the follower: the old model serves
                if str(error) != last_error:
                    serving = self.current.version if self.current else None
                    log.error("serve: %s (still serving version %s)", error, serving,
                              exc_info=not isinstance(error, TunepipeError))
                last_error = str(error)
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        """Loads in the background, then polls until :meth:`stop`."""
        self._thread = threading.Thread(target=self._poll, name="champion-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 30)
