"""The current champion's pointer and verified model card, without loading the model.

The evaluate step (:mod:`tunepipe.evaluation.champion`) loads the champion's model from here;
the watcher (:mod:`tunepipe.watching.guard`) reads only its card, to check new data against
the schema the champion was trained on. Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunepipe.errors import ExportError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import Champion, read_local_champion, read_store_champion
from tunepipe.storage.hashing import sha256_bytes
from tunepipe.storage.objectstore import ObjectStore
from tunepipe.storage.stores import is_remote, parse, store_for


@dataclass(frozen=True)
class ChampionCard:
    """The champion's pointer, its model card (checked against the pointer) and where it lives.

    Attributes:
        pointer: The ``CHAMPION`` pointer.
        card: The model card's fields.
        location: ``<export_root>/<model_name>``.
        store: The object store the card was read through (``None`` for a local export root):
            the champion's other files are downloaded through it, with no second client.
    """

    pointer: Champion
    card: dict[str, Any]
    location: str
    store: ObjectStore | None = None


def _checked_card(data: bytes, pointer: Champion, where: str) -> dict[str, Any]:
    if sha256_bytes(data) != pointer.model_card_sha256:
        raise ExportError(f"{where}: model card does not match the champion pointer's checksum")
    card: dict[str, Any] = json.loads(data)
    return card


def _read_file(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def read_champion_card(export_root: str, model_name: str, store: ObjectStore | None = None) -> ChampionCard | None:
    """The current champion of ``model_name`` with its verified card, or ``None`` when there is none yet.

    Versions of either layout (:mod:`tunepipe.publishing.layout`) are read.

    Args:
        export_root: Local folder or object-store URI (``gs://``, ``s3://``); empty means no champion.
        model_name: The model's folder name.
        store: Object store for a remote root (default: :func:`tunepipe.storage.stores.store_for`,
            with the environment's credentials).

    Raises:
        ExportError: The pointer or card is unreadable, or the card fails its checksum.
    """
    if not export_root:
        return None
    location = layout.model_location(export_root, model_name)
    remote: ObjectStore | None = None
    if is_remote(export_root):
        parsed = parse(location)
        client = remote = store or store_for(parsed)
        found = read_store_champion(client, parsed.prefix)
        if found is None:
            return None
        pointer = found[0]

        def read(path: str) -> bytes | None:
            data = client.read(f"{parsed.prefix}/{pointer.version}/{path}")
            return None if data is None else data[0]
    else:
        local = read_local_champion(Path(location))
        if local is None:
            return None
        pointer, version_dir = local, Path(location) / str(local.version)

        def read(path: str) -> bytes | None:
            return _read_file(version_dir / path)

    card = layout.first_found(read, layout.MODEL_CARD_PATHS)
    if card is None:
        raise ExportError(f"{location}: champion version {pointer.version} has no model card")
    return ChampionCard(pointer, _checked_card(card[1], pointer, f"{location}/{pointer.version}"), location, remote)
