"""Export: publish a versioned serving model with its model card, and make it the champion.

Layout: ``<export_root>/<model_name>/<version>/`` holding ``saved_model/`` (TF Serving),
``model.keras``, ``model_card.json`` and ``model_card.md``; versions are integers that only
increase; ``<export_root>/<model_name>/CHAMPION`` names the current version. Both models
take raw feature values (categoricals as strings): the serving model wraps the trained one
with ``StringLookup`` layers holding the training vocabularies.

The SavedModel is verified against the trained model on raw rows before anything is
published; publishing itself (local folders, gs:// and s3://) is atomic and concurrency-safe, see
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
import numpy as np
import pandas as pd

from tunepipe import __version__, artifacts
from tunepipe.data.features import PreprocessingSpec, model_inputs, raw_inputs
from tunepipe.errors import ExportError
from tunepipe.modelling.image_model import image_serving_model, image_signature
from tunepipe.publishing.publish import STAGING_PREFIX, local_versions, publish_local, publish_to_store
from tunepipe.reports import modelcard
from tunepipe.reports.modelcard import package_versions, render_markdown
from tunepipe.storage.objectstore import ObjectStore
from tunepipe.storage.stores import is_remote, parse, store_for
from tunepipe.storage.uris import check_location

existing_versions = local_versions  # the published versions of a local model folder

log = logging.getLogger(__name__)

# Largest difference allowed between the exported SavedModel's outputs and the trained
# model's on the same rows: float32 rounding only, anything larger means skew.
PREDICTION_TOLERANCE = 1e-5
# strerror(ENOSPC), also in the messages of errors that carry no errno (TensorFlow's)
NO_SPACE = "No space left on device"


def serving_model(trained: keras.Model, spec: PreprocessingSpec) -> keras.Model:
    """Wraps the trained model so that categorical inputs are raw strings (images: any size)."""
    if spec.is_image:
        return image_serving_model(trained, spec)
    raw: dict[str, Any] = {}
    converted: dict[str, Any] = {}
    for feature in spec.numeric:
        raw[feature.input_name] = converted[feature.input_name] = keras.Input(
            (1,), name=feature.input_name, dtype="float32"
        )
    for cat in spec.categorical:
        raw[cat.input_name] = keras.Input((1,), name=cat.input_name, dtype="string")
        lookup = keras.layers.StringLookup(
            vocabulary=cat.vocabulary, num_oov_indices=1, output_mode="int", name=f"lookup_{cat.input_name}"
        )
        converted[cat.input_name] = keras.ops.cast(lookup(raw[cat.input_name]), "int32")
    return keras.Model(raw, trained(converted), name="tunepipe_serving")


def model_location(export_root: str, model_name: str) -> str:
    """``<export_root>/<model_name>`` as a URI or local path.

    Raises:
        ExportError: A scheme other than a local folder, ``gs://`` or ``s3://``.
    """
    export_root = check_location(export_root, "export_root: ", ExportError, samples=False)
    return f"{export_root.rstrip('/')}/{model_name}" if is_remote(export_root) else str(Path(export_root) / model_name)


def signature(spec: PreprocessingSpec) -> dict[str, Any]:
    """The serving signature as the model card records it."""
    if spec.is_image:
        return image_signature(spec)
    inputs = {f.input_name: {"column": f.column, "dtype": "float32", "shape": [None, 1]} for f in spec.numeric}
    for cat in spec.categorical:
        inputs[cat.input_name] = {"column": cat.column, "dtype": "string", "shape": [None, 1]}
    width = len(spec.classes) if spec.is_classification else 1
    meaning = f"probabilities of {spec.classes}" if spec.is_classification else f"predicted {spec.label}"
    return {"inputs": inputs, "output": {"dtype": "float32", "shape": [None, width], "meaning": meaning}}


def verify_saved_model(path: Path, expected: np.ndarray, frame: pd.DataFrame, spec: PreprocessingSpec) -> float:
    """Runs the SavedModel's serving signature on raw rows; raises unless it matches ``expected``."""
    import tensorflow as tf  # SavedModel is TensorFlow's format; only export needs it.

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    feeds = {name: tf.constant(values) for name, values in raw_inputs(frame, spec).items()}
    (served,) = serve(**feeds).values()
    difference = float(np.max(np.abs(served.numpy() - expected))) if len(expected) else 0.0
    if not difference <= PREDICTION_TOLERANCE:
        raise ExportError(
            f"exported SavedModel disagrees with the evaluated model by {difference:.2e} "
            f"(tolerance {PREDICTION_TOLERANCE:.0e}); nothing was published"
        )
    return difference


def _stage(trained: keras.Model, spec: PreprocessingSpec, staging: Path, check_rows: pd.DataFrame) -> float:
    staging.mkdir(parents=True)
    served = serving_model(trained, spec)
    served.save(staging / artifacts.MODEL_FILE)
    served.export(str(staging / artifacts.SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
    expected = np.asarray(trained.predict(model_inputs(check_rows, spec), verbose=0, batch_size=1024))
    return verify_saved_model(staging / artifacts.SAVED_MODEL_DIR, expected, check_rows, spec)


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
            artifacts.MODEL_CARD_MD_FILE: render_markdown(card).encode(),
            artifacts.MODEL_CARD_FILE: json.dumps(card, indent=2).encode(),  # last: marks the version complete
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
        difference = _stage(trained, spec, staging, check_rows)
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
