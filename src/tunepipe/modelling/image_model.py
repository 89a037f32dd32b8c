"""The image hypermodel: a small CNN searched by Hyperband, with augmentation inside the model.

The model takes raw pixels (float32, 0-255, at the configured size), augments them in
training only (``RandomFlip``, ``RandomRotation``, ``RandomZoom``, ``RandomTranslation``,
``RandomContrast`` are identities at inference), rescales them to [0, 1] and runs 1-3
convolution blocks (each doubling the filters, then max-pooling), flattening, dropout and one
dense layer. :func:`image_serving_model` adds a ``Resizing`` layer in front,
so the exported model takes images of any size. Only ``keras.layers``: backend-agnostic.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

from tunepipe.config import AugmentationConfig, SearchSpace
from tunepipe.data.features import PreprocessingSpec
from tunepipe.modelling.hyperparameters import (
    STEPS_PER_EXECUTION,
    PipelineHyperModel,
    choice_value,
    float_value,
    int_value,
)


def augmentation_layers(settings: dict[str, Any], seed: int = 0) -> list[keras.layers.Layer]:
    """The configured image augmentation layers (active in training only), in a fixed order."""
    config = AugmentationConfig.model_validate(settings or {})
    layers: list[keras.layers.Layer] = []
    if config.flip != "none":
        layers.append(keras.layers.RandomFlip(config.flip, seed=seed, name="random_flip"))
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation, fill_mode="constant", seed=seed,
                                                  name="random_rotation"))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="constant", seed=seed, name="random_zoom"))
    if config.translation > 0:
        layers.append(keras.layers.RandomTranslation(config.translation, config.translation, fill_mode="constant",
                                                     seed=seed, name="random_translation"))
    if config.contrast > 0:
        layers.append(keras.layers.RandomContrast(config.contrast, seed=seed, name="random_contrast"))
    return layers


class ImageHyperModel(PipelineHyperModel):
    """Builds and fits the CNN for one set of hyperparameters.

    Args:
        spec: Preprocessing specification with an ``image`` feature and the classes.
        space: The search space; the CNN uses ``conv_blocks``, ``filters``, ``kernel_size``,
            ``dense_units``, ``dropout``, ``learning_rate`` and ``batch_size``.

    Validation runs at the training batch size (the base class's default): a CNN's activations
    grow with the image size, so larger validation batches could run out of memory.
    """

    def __init__(self, spec: PreprocessingSpec, space: SearchSpace) -> None:
        if spec.image is None:
            raise ValueError("ImageHyperModel needs a specification with an image feature")
        super().__init__(spec, space, name="tunepipe_cnn")

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        image = self.spec.image
        assert image is not None
        blocks = int_value(hp, "conv_blocks", self.space.conv_blocks)
        filters = int_value(hp, "filters", self.space.filters)
        kernel = int(choice_value(hp, "kernel_size", list(self.space.kernel_size)))
        dense_units = int_value(hp, "dense_units", self.space.dense_units)
        dropout = float_value(hp, "dropout", self.space.dropout)
        learning_rate = float_value(hp, "learning_rate", self.space.learning_rate)
        choice_value(hp, "batch_size", list(self.space.batch_size))  # declared here, used in fit()
        inputs = keras.Input((image.height, image.width, image.channels), name=image.input_name, dtype="float32")
        x = inputs
        for layer in augmentation_layers(self.spec.augmentation):
            x = layer(x)
        x = keras.layers.Rescaling(1.0 / 255, name="rescale")(x)
        for index in range(blocks):
            x = keras.layers.Conv2D(filters * 2**index, kernel, padding="same", activation="relu",
                                    name=f"conv_{index}")(x)
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool_{index}")(x)
        # Flatten, not global average pooling: where a stroke is matters for small images such
        # as digits, and pooling it away cost most of the accuracy on the shipped sample.
        x = keras.layers.Flatten(name="flatten")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
        outputs = keras.layers.Dense(  # float32 even under mixed precision, for stable probabilities
            len(self.spec.classes), activation="softmax", name="probabilities", dtype="float32"
        )(x)
        model = keras.Model({image.input_name: inputs}, outputs, name="tunepipe_model")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
            metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION,
        )
        return model


def image_serving_model(trained: keras.Model, spec: PreprocessingSpec) -> keras.Model:
    """Wraps the trained CNN so that it takes images of any height and width (resized inside)."""
    image = spec.image
    assert image is not None
    raw = keras.Input((None, None, image.channels), name=image.input_name, dtype="float32")
    resized = keras.layers.Resizing(image.height, image.width, name="resize")(raw)
    # training=False: Keras 3 random augmentation layers default to training mode when called bare.
    outputs = trained({image.input_name: resized}, training=False)
    return keras.Model({image.input_name: raw}, outputs, name="tunepipe_serving")
