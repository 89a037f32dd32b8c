"""Small SavedModels with the serving contract's exact signatures, published like the pipeline does.

Used by the unit tests of tunepipe.serving and by the serving tier's champion-change test: a
tabular classifier (a float feature and a string feature, classes as strings), a tabular regressor
and an image classifier (``image_bytes``, ``pixels``, ``float_pixels``). ``shift`` changes every
prediction, so two versions are told apart by their answers.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tunepipe import artifacts
from tunepipe.publishing.layout import MODEL_CARD
from tunepipe.publishing.publish import Champion, manifest
from tunepipe.storage.hashing import sha256_bytes

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
NUMERIC, NUMERIC_COLUMN = "bill_length_mm", "bill length (mm)"
CATEGORY, CATEGORY_COLUMN = "island", "island"
SIZE, CHANNELS = 8, 1


class Tabular(tf.Module):
    """probabilities = softmax(w * [bill (NaN -> 40), one-hot island (unseen -> 0)] + [shift, 0, 0])."""

    def __init__(self, shift: float, regression: bool) -> None:
        super().__init__()
        self.shift, self.regression = shift, regression
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ISLANDS, list(range(len(ISLANDS))), value_dtype=tf.int64), -1)
        self.weights = tf.constant(np.linspace(-1, 1, 4 * 3, dtype=np.float32).reshape(4, 3))

    def features(self, bill: tf.Tensor, island: tf.Tensor) -> tf.Tensor:
        bill = tf.where(tf.math.is_nan(bill), 40.0, bill) / 50.0
        onehot = tf.one_hot(self.table.lookup(island), len(ISLANDS))  # -1 (unseen, "") -> zeros
        return tf.concat([bill[:, None], onehot], axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, NUMERIC),
                                  tf.TensorSpec([None], tf.string, CATEGORY)])
    def serve(self, bill_length_mm: tf.Tensor, island: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.matmul(self.features(bill_length_mm, island), self.weights) + tf.constant([self.shift, 0.0, 0.0])
        if self.regression:
            return {"prediction": tf.reduce_sum(logits, axis=1)}
        probabilities = tf.nn.softmax(logits)
        return {"probabilities": probabilities,
                "predicted_class": tf.gather(tf.constant(CLASSES), tf.argmax(probabilities, axis=1))}


class Image(tf.Module):
    """probabilities of two classes from the mean brightness (resized to 8x8) plus shift."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def classify(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        resized = tf.image.resize(tf.cast(pixels, tf.float32), (SIZE, SIZE))
        mean = tf.reduce_mean(resized, axis=[1, 2, 3]) / 255.0
        probabilities = tf.nn.softmax(tf.stack([mean * 4 + self.shift, 2 - mean * 4], axis=1))
        return {"probabilities": probabilities,
                "predicted_class": tf.gather(tf.constant(["dark", "light"]), tf.argmax(probabilities, axis=1))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")])
    def serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def decode(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=CHANNELS, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32), (SIZE, SIZE))

        return self.classify(tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, CHANNELS], tf.uint8, "image")])
    def serve_pixels(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.classify(image)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, CHANNELS], tf.float32, "image")])
    def serve_float_pixels(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.classify(image)


def card_signature(kind: str) -> dict[str, Any]:
    """The model card's signature section for ``kind`` (tabular, regression, image)."""
    if kind == "image":
        return {"inputs": {"image_bytes": {"column": "image", "dtype": "string", "shape": [None]}},
                "outputs": {"probabilities": {}, "predicted_class": {}}}
    return {"inputs": {NUMERIC: {"column": NUMERIC_COLUMN, "dtype": "float32", "shape": [None]},
                       CATEGORY: {"column": CATEGORY_COLUMN, "dtype": "string", "shape": [None]}},
            "outputs": {"prediction": {}} if kind == "regression" else {"probabilities": {}, "predicted_class": {}}}


def save(folder: Path, kind: str, shift: float) -> tf.Module:
    """Writes the SavedModel into ``folder`` (the version root); returns the module (to call in-process)."""
    if kind == "image":
        module: tf.Module = Image(shift)
        signatures = {"serving_default": module.serve_bytes, "pixels": module.serve_pixels,
                      "float_pixels": module.serve_float_pixels}
    else:
        module = Tabular(shift, regression=kind == "regression")
        signatures = {"serving_default": module.serve}
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return module


def publish(model_dir: Path, version: int, kind: str = "tabular", shift: float = 0.0, champion: bool = True) -> Path:
    """Publishes a version in today's layout (card with the files' checksums); moves the pointer."""
    staged = model_dir / f".staging-{uuid.uuid4().hex}"
    save(staged, kind, shift)
    card = {"model_name": model_dir.name, "version": version, "task": kind, artifacts.META_VERSION: version,
            "signature": card_signature(kind), "files": manifest(staged)}
    (staged / MODEL_CARD).parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(card, indent=2).encode()
    (staged / MODEL_CARD).write_bytes(data)
    staged.rename(model_dir / str(version))
    if champion:
        point(model_dir, version, sha256_bytes(data))
    return model_dir / str(version)


def point(model_dir: Path, version: int, card_sha: str) -> None:
    """Replaces ``CHAMPION`` atomically, as the publisher does."""
    temporary = model_dir / f".champion-{uuid.uuid4().hex}"
    temporary.write_bytes(Champion(version, card_sha, "2025-01-01T00:00:00+00:00").to_bytes())
    os.replace(temporary, model_dir / artifacts.CHAMPION_FILE)
