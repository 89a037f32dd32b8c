"""Export: publish a versioned serving model with its model card.

Layout: ``<export_root>/<model_name>/<version>/`` holding ``saved_model/`` (TF Serving),
``model.keras`` and ``model_card.json``; versions are integers that only increase. Both
models take raw feature values (categoricals as strings): the serving model wraps the
trained one with ``StringLookup`` layers holding the training vocabularies.

Publishing is atomic on a local file system: everything is written and verified in a hidden
staging folder beside the versions, then renamed to the next free version number, so no
reader ever sees a half-written version and two concurrent exports get distinct versions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tunepipe import __version__, artifacts
from tunepipe.errors import ExportError
from tunepipe.features import PreprocessingSpec, model_inputs, raw_inputs
from tunepipe.image_model import image_serving_model, image_signature

log = logging.getLogger(__name__)

# Largest difference allowed between the exported SavedModel's outputs and the trained
# model's on the same rows: float32 rounding only, anything larger means skew.
PREDICTION_TOLERANCE = 1e-5


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


def local_export_dir(export_root: str, model_name: str) -> Path:
    """The model's folder under a local export root (``gs://`` is not supported yet)."""
    if "://" in export_root:
        raise ExportError(f"{export_root}: only local export roots are supported in this version")
    return Path(export_root) / model_name


def existing_versions(model_dir: Path) -> list[int]:
    """Published version numbers, ascending; staging folders and other names are ignored."""
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit())


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


def _publish(staging: Path, model_dir: Path, card: dict[str, Any]) -> int:
    """Renames ``staging`` to the next free version, retrying if a concurrent export wins."""
    while True:
        version = (existing_versions(model_dir) or [0])[-1] + 1
        card[artifacts.META_VERSION] = version
        (staging / artifacts.MODEL_CARD_FILE).write_text(json.dumps(card, indent=2))
        try:
            os.rename(staging, model_dir / str(version))
            return version
        except OSError:
            if not (model_dir / str(version)).exists():
                raise


def export_model(
    trained: keras.Model,
    spec: PreprocessingSpec,
    export_root: str,
    model_name: str,
    card: dict[str, Any],
    check_rows: pd.DataFrame,
) -> Path:
    """Publishes ``trained`` as the next version of ``model_name`` and returns its folder.

    Args:
        trained: The evaluated model (categorical inputs as indices).
        spec: Preprocessing specification, for the string lookups and the signature.
        export_root: Local folder holding one folder per model name.
        model_name: The model's folder name.
        card: Model-card fields (hyperparameters, metrics, data fingerprint...); the version,
            time, package version and serving signature are added here.
        check_rows: Raw rows (usually the test split) on which the SavedModel must reproduce
            the trained model's outputs before it is published.

    Raises:
        ExportError: Verification failed or the files could not be written; nothing is left
            at the final path and earlier versions are untouched.
    """
    model_dir = local_export_dir(export_root, model_name)
    staging = model_dir / f".staging-{uuid.uuid4().hex}"
    try:
        difference = _stage(trained, spec, staging, check_rows)
        full_card = {
            **card,
            "model_name": model_name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "tunepipe_version": __version__,
            "keras_version": keras.__version__,
            "signature": signature(spec),
            "verification": {"rows": len(check_rows), "max_abs_difference": difference},
        }
        version = _publish(staging, model_dir, full_card)
    except ExportError:
        raise
    except OSError as error:
        raise ExportError(f"cannot write the export under {model_dir}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = model_dir / str(version)
    log.info("export: published %s (version %d)", final, version)
    return final
