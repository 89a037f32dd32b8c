"""Export: publish a versioned serving model with its model card, and make it the champion.

Layout: ``<export_root>/<model_name>/<version>/`` is the SavedModel itself (what TF Serving,
KServe and Vertex AI load), with ``model.keras``, the model card and TF Serving's warm-up
requests in ``assets.extra/`` (:mod:`tunepipe.publishing.layout`); versions are integers that
only increase; ``<export_root>/<model_name>/CHAMPION`` names the current version. Both models
take raw feature values with missing cells (:mod:`tunepipe.publishing.serving`).

Every signature of the SavedModel is verified against the trained model on raw rows, with
missing cells, before anything is published (:mod:`tunepipe.publishing.verify`); publishing
itself (local folders, gs:// and s3://) is atomic and concurrency-safe, see
:mod:`tunepipe.publishing.publish` and docs/export.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from tunepipe import __version__, artifacts
from tunepipe.data.features import PreprocessingSpec
from tunepipe.errors import ExportError
from tunepipe.publishing import layout
from tunepipe.publishing.layout import model_location
from tunepipe.publishing.publish import STAGING_PREFIX, local_versions, publish_local, publish_to_store
from tunepipe.publishing.saved_model import write_saved_model
from tunepipe.publishing.serving import serving_model, signature
from tunepipe.publishing.verify import PREDICTION_TOLERANCE, verify_saved_model, warmup_requests
from tunepipe.publishing.warmup import write_warmup
from tunepipe.reports import modelcard
from tunepipe.reports.modelcard import package_versions, render_markdown
from tunepipe.storage.objectstore import ObjectStore
from tunepipe.storage.stores import is_remote, parse, store_for

existing_versions = local_versions  # the published versions of a local model folder

log = logging.getLogger(__name__)

# strerror(ENOSPC), also in the messages of errors that carry no errno (TensorFlow's)
NO_SPACE = "No space left on device"


def _stage(trained: keras.Model, spec: PreprocessingSpec, staging: Path, check_rows: pd.DataFrame,
           model_name: str) -> float:
    """Writes the version's files into ``staging`` (see :mod:`tunepipe.publishing.layout`) and verifies them."""
    staging.mkdir(parents=True)
    served = serving_model(trained, spec)
    write_saved_model(served, spec, staging)  # the SavedModel at the version root, where servers look
    (staging / artifacts.EXTRA_DIR).mkdir(exist_ok=True)
    served.save(staging / layout.KERAS_MODEL)
    write_warmup(staging / layout.WARMUP, model_name, warmup_requests(check_rows, spec))
    return verify_saved_model(staging, trained, spec, check_rows)


@dataclass(frozen=True)
class Published:
    """Where a version went: its number, folder (path or object-store URI) and model card."""

    version: int
    location: str
    card: dict[str, Any]


def _renderer(card: dict[str, Any]) -> Callable[[int, dict[str, Any]], dict[str, bytes]]:
    def render(version: int, files: dict[str, Any]) -> dict[str, bytes]:
        card[artifacts.META_VERSION] = version
        card[modelcard.CARD_FILES] = files
        return {
            layout.MODEL_CARD_MD: render_markdown(card).encode(),
            layout.MODEL_CARD: json.dumps(card, indent=2).encode(),  # last: marks the version complete
        }

    return render


def export_model(
    trained: keras.Model,
    spec: PreprocessingSpec,
    export_root: str,
    model_name: str,
    card: dict[str, Any],
    check_rows: pd.DataFrame,
    store: ObjectStore | None = None,
) -> Published:
    """Publishes ``trained`` as the next version of ``model_name`` and makes it the champion.

    Args:
        trained: The evaluated model (categorical inputs as indices).
        spec: Preprocessing specification, for the string lookups and the signature.
        export_root: Local folder, ``gs://bucket/prefix`` or ``s3://bucket/prefix`` holding one
            folder per model name.
        model_name: The model's folder name.
        card: Model-card fields (hyperparameters, metrics, data fingerprint...); the version,
            time, package versions, file checksums and serving signature are added here.
        check_rows: Raw rows (usually the test split) on which the SavedModel must reproduce
            the trained model's outputs before it is published.
        store: Object store for a remote root (default: :func:`tunepipe.storage.stores.store_for`,
            a client from the environment's default credentials); unused for local roots.

    Raises:
        ExportError: Verification, upload or checksum failed; nothing is left at the final
            path, earlier versions and the champion pointer are untouched.
    """
    location = model_location(export_root, model_name)
    remote = is_remote(export_root)
    scratch = Path(tempfile.mkdtemp(prefix="tunepipe-export-")) if remote else Path(location)
    staging = scratch / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    try:
        difference = _stage(trained, spec, staging, check_rows, model_name)
        full_card = {
            **card,
            modelcard.CARD_MODEL_NAME: model_name,
            modelcard.CARD_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
            modelcard.CARD_TUNEPIPE_VERSION: __version__,
            modelcard.CARD_PACKAGES: package_versions(),
            modelcard.CARD_SIGNATURE: signature(spec),
            modelcard.CARD_VERIFICATION: {"rows": len(check_rows), "max_abs_difference": difference,
                             "tolerance": PREDICTION_TOLERANCE},
        }
        if remote:
            parsed = parse(location, error=ExportError)
            version = publish_to_store(store or store_for(parsed), parsed.prefix, staging,
                                       _renderer(full_card))
        else:
            version = publish_local(staging, Path(location), _renderer(full_card))
    except ExportError:
        raise
    except Exception as error:
        # TensorFlow's SavedModel writer reports a full disk as its own error type, not OSError
        if isinstance(error, OSError) or NO_SPACE in str(error):
            raise ExportError(f"cannot write the export under {location}: {error}") from error
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if remote:
            shutil.rmtree(scratch, ignore_errors=True)
    final = f"{location}/{version}" if remote else str(Path(location) / str(version))
    log.info("export: published %s (version %d) and made it the champion", final, version)
    return Published(version, final, full_card)
