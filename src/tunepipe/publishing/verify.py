"""Before publishing: the written SavedModel must answer as the evaluated model does.

Every signature is called on the check rows (usually the test split) and compared with the
trained model's outputs on the same rows. Tabular checks add rows with missing cells (one
feature blanked per row, and one row with every feature blanked), which must get the
prediction of the same rows filled as ingest fills them. Image checks send the same images as
encoded PNG bytes, uint8 pixels and float32 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tunepipe.data.features import PreprocessingSpec, model_inputs, raw_inputs
from tunepipe.errors import ExportError
from tunepipe.modelling.imbalance import predicted_ids
from tunepipe.publishing import serving

# Largest difference allowed between the exported SavedModel's outputs and the trained
# model's on the same rows: float32 rounding only, anything larger means skew.
PREDICTION_TOLERANCE = 1e-5
WARMUP_ROWS = 3


@dataclass(frozen=True)
class Check:
    """One signature call to verify: its inputs, and the rows the trained model sees instead."""

    signature: str
    feeds: dict[str, np.ndarray]
    cleaned: pd.DataFrame


def with_missing_cells(rows: pd.DataFrame, spec: PreprocessingSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with one feature blanked each (and one with all blanked), and the same rows filled.

    Returns:
        The raw rows (NaN in numeric cells, ``None`` in categorical ones) and the rows as
        ingest would have cleaned them (the spec's fill values). Features without a recorded
        fill value (specifications written before fill values existed) are left alone.
    """
    features: list[tuple[str, float | str]] = [(f.column, f.fill) for f in spec.numeric if f.fill is not None]
    features += [(c.column, c.fill) for c in spec.categorical if c.fill is not None]
    if rows.empty or not features:
        return rows.iloc[:0], rows.iloc[:0]
    picked = rows.iloc[np.arange(len(features) + 1) % len(rows)].reset_index(drop=True)
    for feature in spec.numeric:  # NaN needs a float column (an int column cannot hold it)
        picked[feature.column] = picked[feature.column].astype(np.float64)
    raw, cleaned = picked.copy(), picked.copy()
    for position, (column, fill) in enumerate(features):
        for row in (position, len(features)):  # its own row, and the last row with every feature blank
            raw.loc[row, column] = np.nan if isinstance(fill, float) else None
            cleaned.loc[row, column] = fill
    return raw, cleaned


def _scalar_feeds(frame: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    return {name: values.reshape(-1) for name, values in raw_inputs(frame, spec).items()}


def checks(rows: pd.DataFrame, spec: PreprocessingSpec) -> list[Check]:
    """The signature calls that verification makes (and whose first rows warm TF Serving up)."""
    if spec.image is None:
        raw, cleaned = with_missing_cells(rows, spec)
        both = pd.concat([raw, rows], ignore_index=True)
        return [Check(serving.DEFAULT_SIGNATURE, _scalar_feeds(both, spec),
                      pd.concat([cleaned, rows], ignore_index=True))]
    import tensorflow as tf  # PNG encoding

    name = spec.image.input_name
    pixels = raw_inputs(rows, spec)[name]
    as_uint8 = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    encoded = np.array([tf.io.encode_png(image).numpy() for image in as_uint8], dtype=object)
    return [
        Check(serving.DEFAULT_SIGNATURE, {f"{name}{serving.BYTES_SUFFIX}": encoded}, rows),
        Check(serving.PIXELS_SIGNATURE, {name: as_uint8}, rows),
        Check(serving.FLOAT_PIXELS_SIGNATURE, {name: pixels}, rows),
    ]


def _compare(served: dict[str, Any], expected: np.ndarray, spec: PreprocessingSpec, signature: str) -> float:
    if not spec.is_classification:
        return float(np.max(np.abs(served[serving.PREDICTION].numpy() - expected.reshape(-1))))
    probabilities = served[serving.PROBABILITIES].numpy()
    labels = [value.decode() for value in served[serving.PREDICTED_CLASS].numpy()]
    if labels != [spec.classes[index] for index in predicted_ids(probabilities, spec.decision)]:
        raise ExportError(f"exported SavedModel's {signature} names a class other than its decision rule's "
                          "(the most probable class, or train's threshold); nothing was published")
    return float(np.max(np.abs(probabilities - expected)))


def verify_saved_model(path: Path, trained: keras.Model, spec: PreprocessingSpec, rows: pd.DataFrame) -> float:
    """Calls every signature on ``rows``; raises unless each matches ``trained``'s outputs.

    Returns:
        The largest absolute difference seen.

    Raises:
        ExportError: A signature disagrees by more than :data:`PREDICTION_TOLERANCE`.
    """
    import tensorflow as tf  # SavedModel is TensorFlow's format; only export needs it.

    loaded = tf.saved_model.load(str(path))
    worst = 0.0
    for check in checks(rows, spec):
        if check.cleaned.empty:
            continue
        expected = np.asarray(trained.predict(model_inputs(check.cleaned, spec), verbose=0, batch_size=1024))
        served = loaded.signatures[check.signature](**{k: tf.constant(v) for k, v in check.feeds.items()})
        difference = _compare(served, expected, spec, check.signature)
        if not difference <= PREDICTION_TOLERANCE:
            raise ExportError(
                f"exported SavedModel's {check.signature} disagrees with the evaluated model by {difference:.2e} "
                f"(tolerance {PREDICTION_TOLERANCE:.0e}); nothing was published"
            )
        worst = max(worst, difference)
    return worst


def warmup_requests(rows: pd.DataFrame, spec: PreprocessingSpec) -> list[tuple[str, dict[str, np.ndarray]]]:
    """A few rows per signature for TF Serving's warm-up file (with missing cells, for tables)."""
    requests = []
    for check in checks(rows.iloc[:WARMUP_ROWS], spec):
        requests.append((check.signature, {name: values[:WARMUP_ROWS] for name, values in check.feeds.items()}))
    return requests
