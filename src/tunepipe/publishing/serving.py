"""The serving contract: what the published SavedModel takes and answers, and how.

Signatures (TensorFlow Serving, KServe and Vertex AI call ``serving_default``):

- **Tabular** ``serving_default``: one scalar input per feature (shape ``[None]``), named by its
  ``input_name``; numeric ``float32`` with NaN for a missing value, categorical ``string`` with
  ``""`` for a missing value and any unseen value allowed. Missing values are filled inside the
  model with the values ingest filled the training data with (:mod:`tunepipe.data.missing`),
  so a raw row with an empty cell gets the prediction of the same row cleaned by ingest.
- **Image** ``serving_default``: ``<input>_bytes``, encoded JPEG/PNG/GIF/BMP as ``string``
  (REST clients send ``{"b64": ...}``, which TF Serving and Vertex AI decode for string
  inputs); ``pixels``: ``uint8`` pixels of any size; ``float_pixels``: ``float32`` pixels
  (0-255) of any size. Every image is resized inside the model to the training size.
- **Outputs**: classification ``probabilities`` (``float32 [None, classes]``) and
  ``predicted_class`` (the label as a ``string``, from the classes seen in training);
  regression ``prediction`` (``float32 [None]``, in the label's units).

The Keras serving model (``model.keras``) is the same graph with ``[None, 1]`` inputs per
feature (images: float32 pixels of any size) and the probabilities or prediction as its one
output; the champion comparison scores it.
"""

from __future__ import annotations

from typing import Any

import keras
import pandas as pd

from tunepipe.data.dates import to_days
from tunepipe.data.features import PreprocessingSpec
from tunepipe.modelling.image_model import image_serving_model

PROBABILITIES = "probabilities"
PREDICTED_CLASS = "predicted_class"
PREDICTION = "prediction"
DEFAULT_SIGNATURE = "serving_default"
PIXELS_SIGNATURE = "pixels"
FLOAT_PIXELS_SIGNATURE = "float_pixels"
IGNORED_COLUMNS = "ignored_columns"
BYTES_SUFFIX = "_bytes"  # Vertex AI's and AI Platform's name for base64-carried string inputs


def serving_model(trained: keras.Model, spec: PreprocessingSpec) -> keras.Model:
    """Wraps the trained model so that it takes raw values with missing cells (images: any size)."""
    if spec.is_image:
        return image_serving_model(trained, spec)
    raw: dict[str, Any] = {}
    converted: dict[str, Any] = {}
    for feature in spec.numeric:
        raw[feature.input_name] = keras.Input((1,), name=feature.input_name, dtype="float32")
        value = raw[feature.input_name]
        if feature.fill is not None:
            value = keras.ops.where(keras.ops.isnan(value), keras.ops.cast(feature.fill, "float32"), value)
        converted[feature.input_name] = value
    for cat in spec.categorical:
        raw[cat.input_name] = keras.Input((1,), name=cat.input_name, dtype="string")
        converted[cat.input_name] = _categorical_indices(raw[cat.input_name], cat.vocabulary, cat.fill,
                                                         cat.input_name)
    return keras.Model(raw, trained(converted), name="tunepipe_serving")


def _categorical_indices(raw: Any, vocabulary: list[str], fill: str | None, name: str) -> Any:
    """Indices as the trainable model takes them (0 = unseen), ``""`` mapped to the fill's index."""
    if fill is None or "" in vocabulary:
        lookup = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1, name=f"lookup_{name}")
        return keras.ops.cast(lookup(raw), "int32")
    # "" gets the extra index len + 1, then takes the index the fill value has (0 when unseen).
    lookup = keras.layers.StringLookup(vocabulary=[*vocabulary, ""], num_oov_indices=1, name=f"lookup_{name}")
    indices = keras.ops.cast(lookup(raw), "int32")
    fill_index = vocabulary.index(fill) + 1 if fill in vocabulary else 0
    return keras.ops.where(keras.ops.equal(indices, len(vocabulary) + 1), fill_index, indices)


def date_days(text: str) -> float:
    """A date input sent as text (ISO 8601) as the model takes it: days since 1970-01-01 UTC, parsed
    as ingest parses the column (:func:`tunepipe.data.dates.to_days`); NaN when it is no date."""
    return float(to_days(pd.Series([text], dtype=object)).iloc[0])


def _output(dtype: str, shape: list[int | None], meaning: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "meaning": meaning}


def outputs(spec: PreprocessingSpec) -> dict[str, dict[str, Any]]:
    """The named outputs every signature answers with, as the model card records them."""
    if not spec.is_classification:
        return {PREDICTION: _output("float32", [None], f"predicted {spec.label}")}
    return {
        PROBABILITIES: _output("float32", [None, len(spec.classes)], f"probabilities of {spec.classes}"),
        PREDICTED_CLASS: _output("string", [None], f"the most probable of {spec.classes}" if not spec.decision else
                                 f"{spec.decision['positive_class']!r} when its probability is at least "
                                 f"{spec.decision['threshold']:.4f} (chosen for {spec.decision['metric']} on the "
                                 "validation rows), else the other class"),
    }


def signature_inputs(spec: PreprocessingSpec) -> dict[str, dict[str, dict[str, Any]]]:
    """Each signature's inputs (name, column, dtype, shape, meaning), ``serving_default`` first."""
    image = spec.image
    if image is not None:
        size = f"any size, resized to {image.height}x{image.width}x{image.channels}"
        pixels_shape: list[int | None] = [None, None, None, image.channels]
        return {
            DEFAULT_SIGNATURE: {f"{image.input_name}{BYTES_SUFFIX}": {
                "column": image.column, "dtype": "string", "shape": [None],
                "meaning": f"encoded JPEG, PNG, GIF or BMP image ({size}); REST: {{\"b64\": ...}}"}},
            PIXELS_SIGNATURE: {image.input_name: {"column": image.column, "dtype": "uint8", "shape": pixels_shape,
                                                  "meaning": f"pixels 0-255 ({size})"}},
            FLOAT_PIXELS_SIGNATURE: {image.input_name: {"column": image.column, "dtype": "float32",
                                                        "shape": pixels_shape, "meaning": f"pixels 0-255 ({size})"}},
        }
    inputs: dict[str, dict[str, Any]] = {}
    for feature in spec.numeric:
        inputs[feature.input_name] = {"column": feature.column, "dtype": "float32", "shape": [None],
                                      "meaning": f"missing: NaN (filled with {feature.fill})"}
        if feature.column in spec.dates:
            inputs[feature.input_name].update(date=True, meaning=(
                f"a date: days since 1970-01-01 UTC (tunepipe serve also takes ISO 8601 text); missing: NaN "
                f"(filled with {feature.fill})"))
    for cat in spec.categorical:
        inputs[cat.input_name] = {"column": cat.column, "dtype": "string", "shape": [None],
                                  "meaning": f"missing: \"\" (filled with {cat.fill!r}); unseen values allowed"}
    return {DEFAULT_SIGNATURE: inputs}


def signature(spec: PreprocessingSpec) -> dict[str, Any]:
    """The serving contract as the model card records it.

    ``inputs`` and ``outputs`` are ``serving_default``'s; ``signatures`` lists every signature;
    ``ignored_columns`` (only when there are any) names the identifier columns a request may send
    and the server ignores (the SavedModel itself takes only its inputs).
    """
    named = signature_inputs(spec)
    answers = outputs(spec)
    return {
        "inputs": named[DEFAULT_SIGNATURE],
        "outputs": answers,
        "signatures": {name: {"inputs": inputs, "outputs": answers} for name, inputs in named.items()},
        **({IGNORED_COLUMNS: list(spec.ignored_columns)} if spec.ignored_columns else {}),
    }
