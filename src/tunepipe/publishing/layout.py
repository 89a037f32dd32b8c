"""Where each file of a published version lives, in today's layout and the one before it.

Today (what model servers load as published)::

    <export_root>/<model_name>/<version>/
        saved_model.pb, fingerprint.pb, variables/, assets/    the SavedModel, at the version root
        assets.extra/model.keras                                the Keras serving model
        assets.extra/model_card.json, model_card.md             the model card (json last: complete)
        assets.extra/tf_serving_warmup_requests                 TF Serving's warm-up requests

TensorFlow Serving, KServe's TensorFlow runtime and Vertex AI treat ``<version>/`` itself as
the SavedModel and ignore ``assets.extra/``. Versions published before this layout kept the
SavedModel in ``<version>/saved_model/`` and the other files at the version root; readers
(the champion comparison, the model server) try today's path first, then the older one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tunepipe import artifacts
from tunepipe.errors import ExportError
from tunepipe.reports.modelcard import CARD_FILES
from tunepipe.storage.stores import is_remote
from tunepipe.storage.uris import check_location

KERAS_MODEL = f"{artifacts.EXTRA_DIR}/{artifacts.MODEL_FILE}"
MODEL_CARD = f"{artifacts.EXTRA_DIR}/{artifacts.MODEL_CARD_FILE}"
MODEL_CARD_MD = f"{artifacts.EXTRA_DIR}/{artifacts.MODEL_CARD_MD_FILE}"
WARMUP = f"{artifacts.EXTRA_DIR}/{artifacts.WARMUP_FILE}"
SAVED_MODEL_PB = "saved_model.pb"

# Today's path first, then the older layout's: a reader takes the first that exists.
MODEL_CARD_PATHS = (MODEL_CARD, artifacts.MODEL_CARD_FILE)
SAVED_MODEL_DIRS = ("", artifacts.SAVED_MODEL_DIR)  # relative to the version folder; "" is the folder itself

T = TypeVar("T")


def first_found(read: Callable[[str], T | None], paths: tuple[str, ...]) -> tuple[str, T] | None:
    """The first of ``paths`` that ``read`` finds (``read`` returns ``None`` for a missing path)."""
    for path in paths:
        found = read(path)
        if found is not None:
            return path, found
    return None


def keras_model_path(card: Mapping[str, Any]) -> str:
    """The ``model.keras`` path inside the version, from the model card's file list (either layout)."""
    files = card.get(CARD_FILES, {})
    return KERAS_MODEL if KERAS_MODEL in files else artifacts.MODEL_FILE


def saved_model_dir(card: Mapping[str, Any]) -> str:
    """The SavedModel folder relative to the version (``""``: the version root), from the card's files."""
    files = card.get(CARD_FILES, {})
    return "" if SAVED_MODEL_PB in files else artifacts.SAVED_MODEL_DIR


def model_location(export_root: str, model_name: str) -> str:
    """``<export_root>/<model_name>`` as a URI or local path.

    Raises:
        ExportError: A scheme other than a local folder, ``gs://`` or ``s3://``.
    """
    export_root = check_location(export_root, "export_root: ", ExportError, samples=False)
    return f"{export_root.rstrip('/')}/{model_name}" if is_remote(export_root) else str(Path(export_root) / model_name)
