"""Writes the SavedModel of the serving contract (:mod:`tunepipe.publishing.serving`).

The Keras serving model does the preprocessing; the endpoints written here add what only
TensorFlow can do or what a model server needs from a signature: scalar inputs per row, the
decoding of encoded images, and the named outputs with the predicted class as a string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from tunepipe.data.features import PreprocessingSpec
from tunepipe.publishing import serving


def _named_outputs(tf: Any, spec: PreprocessingSpec, answer: Any) -> dict[str, Any]:
    if not spec.is_classification:
        return {serving.PREDICTION: tf.reshape(answer, [-1])}
    classes = tf.constant(spec.classes)
    scores = answer
    if spec.decision:  # train's decision rule (tunepipe.modelling.imbalance.predicted_ids): argmax(p * weights)
        scores = answer * tf.constant(spec.decision["weights"], dtype=answer.dtype)
    return {serving.PROBABILITIES: answer, serving.PREDICTED_CLASS: tf.gather(classes, tf.argmax(scores, axis=-1))}


def _tabular_endpoint(tf: Any, model: keras.Model, spec: PreprocessingSpec) -> tuple[Any, list[Any]]:
    names = [*(f.input_name for f in spec.numeric), *(c.input_name for c in spec.categorical)]
    dtypes = [*(tf.float32 for _ in spec.numeric), *(tf.string for _ in spec.categorical)]
    specs = {name: tf.TensorSpec([None], dtype, name=name) for name, dtype in zip(names, dtypes, strict=True)}

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        columns = {name: tf.expand_dims(value, -1) for name, value in inputs.items()}
        return _named_outputs(tf, spec, model(columns, training=False))

    return serve, [specs]


def _decoder(tf: Any, spec: PreprocessingSpec) -> Any:
    image = spec.image
    assert image is not None

    def decode(encoded: Any) -> Any:
        pixels = tf.io.decode_image(encoded, channels=image.channels, expand_animations=False, dtype=tf.uint8)
        # The Keras Resizing layer's method (bilinear, no antialiasing), so a decoded image of the
        # training size reaches the network unchanged.
        return tf.image.resize(tf.cast(pixels, tf.float32), [image.height, image.width], method="bilinear")

    return decode


def _image_endpoints(tf: Any, model: keras.Model, spec: PreprocessingSpec) -> dict[str, tuple[Any, list[Any]]]:
    image = spec.image
    assert image is not None
    name, channels = image.input_name, image.channels
    decode = _decoder(tf, spec)
    size = [image.height, image.width, channels]

    def from_bytes(encoded: Any) -> dict[str, Any]:
        pixels = tf.map_fn(decode, encoded, fn_output_signature=tf.TensorSpec(size, tf.float32))
        return _named_outputs(tf, spec, model({name: pixels}, training=False))

    def from_pixels(pixels: Any) -> dict[str, Any]:
        return _named_outputs(tf, spec, model({name: tf.cast(pixels, tf.float32)}, training=False))

    shape = [None, None, None, channels]
    return {
        serving.DEFAULT_SIGNATURE: (from_bytes, [tf.TensorSpec([None], tf.string,
                                                               name=f"{name}{serving.BYTES_SUFFIX}")]),
        serving.PIXELS_SIGNATURE: (from_pixels, [tf.TensorSpec(shape, tf.uint8, name=name)]),
        serving.FLOAT_PIXELS_SIGNATURE: (from_pixels, [tf.TensorSpec(shape, tf.float32, name=name)]),
    }


def write_saved_model(model: keras.Model, spec: PreprocessingSpec, path: Path) -> None:
    """Writes ``model`` (the Keras serving model) as a SavedModel with the contract's signatures."""
    import tensorflow as tf  # SavedModel is TensorFlow's format; only export needs it.

    endpoints = (_image_endpoints(tf, model, spec) if spec.is_image
                 else {serving.DEFAULT_SIGNATURE: _tabular_endpoint(tf, model, spec)})
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    archive.write_out(str(path), verbose=False)
