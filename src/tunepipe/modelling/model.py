"""One search space and one ``build_model(hp)`` for tuning and final training.

:class:`TabularHyperModel` builds a multilayer perceptron whose first layers apply the
preprocessing specification: a ``Normalization`` layer holding the training split's
statistics (z-score: means and variances; min-max: minimums and squared ranges, so the same
layer computes ``(x - min) / (max - min)``), optional ``GaussianNoise`` (training only), and
categorical indices one-hot encoded or, above ``max_one_hot`` values, embedded; a date column
(days since the epoch) adds its calendar features (:func:`calendar`). Image data
gets :class:`~tunepipe.modelling.image_model.ImageHyperModel` instead
(:func:`~tunepipe.modelling.chooser.hypermodel_for`). Only
``keras.layers`` are used, with numpy inputs, so the same code runs on the TensorFlow, JAX or
PyTorch backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import keras_tuner

from tunepipe.config import SearchSpace
from tunepipe.data.dates import DAYS_PER_YEAR, EPOCH_WEEKDAY
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.target import LOG
from tunepipe.modelling.hyperparameters import (
    LARGE_VALIDATION_BATCH,
    STEPS_PER_EXECUTION,
    PipelineHyperModel,
    choice_value,
    float_value,
    int_value,
)

# SGD without momentum crawls through Hyperband's one-epoch first rounds; 0.9 is the usual value.
SGD_MOMENTUM = 0.9


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The optimizer ``name`` (adam, rmsprop or sgd with momentum 0.9) at ``learning_rate``."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.Adam(learning_rate)


def in_label_units(model: keras.Model, spec: PreprocessingSpec) -> keras.Model:
    """``model`` with its output in the label's units: followed by the exponential when the network
    learns the log of the label (``spec.label_transform``, :mod:`tunepipe.data.target`), else itself.

    The model train exports, and so what evaluate scores and the served model answers, is this one;
    fits (tuning, training, the folds) act on the network itself.
    """
    if spec.is_classification or spec.label_transform != LOG:
        return model
    output = keras.layers.Activation("exponential", dtype="float32", name="label_units")(model.output)
    return keras.Model(model.input, output, name=model.name)


def calendar(days: Any) -> Any:
    """The cyclic calendar features of a date input (days since the epoch, ``[rows, 1]``), as
    :func:`tunepipe.data.dates.calendar_features` computes them: hour, day of week and time of year,
    each as a sine and a cosine (``[rows, 6]``); keras.ops only, so every backend runs them."""
    turn = 2 * math.pi
    hour = turn * (days - keras.ops.floor(days))
    weekday = turn * keras.ops.mod(keras.ops.floor(days) + EPOCH_WEEKDAY, 7.0) / 7.0
    year = turn * keras.ops.mod(days, DAYS_PER_YEAR) / DAYS_PER_YEAR
    return keras.ops.concatenate([keras.ops.sin(hour), keras.ops.cos(hour), keras.ops.sin(weekday),
                                  keras.ops.cos(weekday), keras.ops.sin(year), keras.ops.cos(year)], axis=-1)


def embedding_dim(vocabulary_size: int) -> int:
    """Embedding width for a vocabulary: grows like size^0.56 (fast.ai's rule of thumb), at most 32."""
    return max(2, min(32, round(1.6 * math.pow(vocabulary_size, 0.56))))


class TabularHyperModel(PipelineHyperModel):
    """Builds and fits the tabular model for one set of hyperparameters.

    Args:
        spec: Preprocessing specification fitted on the training split.
        space: The search space; each range with min == max becomes a fixed value.
    """

    def __init__(self, spec: PreprocessingSpec, space: SearchSpace) -> None:
        super().__init__(spec, space, name="tunepipe_mlp")

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs, encoded = self._encoded_inputs()
        layers = int_value(hp, "hidden_layers", self.space.hidden_layers)
        units = int_value(hp, "units", self.space.units)
        activation = choice_value(hp, "activation", list(self.space.activation))
        dropout = float_value(hp, "dropout", self.space.dropout)
        l1 = float_value(hp, "l1", self.space.l1)
        l2 = float_value(hp, "l2", self.space.l2)
        optimizer = choice_value(hp, "optimizer", list(self.space.optimizer))
        learning_rate = float_value(hp, "learning_rate", self.space.learning_rate)
        choice_value(hp, "batch_size", list(self.space.batch_size))  # declared here, used in fit()
        x = encoded
        for index in range(layers):
            x = keras.layers.Dense(
                units, activation=activation, kernel_regularizer=keras.regularizers.L1L2(l1=l1, l2=l2),
                name=f"hidden_{index}",
            )(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
        model = keras.Model(inputs, self._head(x), name="tunepipe_model")
        model.compile(
            optimizer=make_optimizer(optimizer, learning_rate),
            loss=self._loss(),
            metrics=["accuracy"] if self.spec.is_classification else ["mae"],
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        return model

    def validation_batch_size(self, batch_size: int) -> int | None:
        """At least 1,024 rows per validation batch: an MLP's activations for that many rows take
        kilobytes to a few megabytes, and validating 4,000 rows took about half the time it took
        in batches of 32 (the throughput benchmark's table, a tenth of each epoch saved)."""
        return max(batch_size, LARGE_VALIDATION_BATCH)

    def _encoded_inputs(self) -> tuple[dict[str, Any], Any]:
        inputs: dict[str, Any] = {}
        parts = []
        if self.spec.numeric:
            numeric = [
                inputs.setdefault(f.input_name, keras.Input((1,), name=f.input_name, dtype="float32"))
                for f in self.spec.numeric
            ]
            joined = numeric[0] if len(numeric) == 1 else keras.layers.Concatenate(name="numeric")(numeric)
            if self.spec.normalization == "minmax":
                mean = [f.minimum for f in self.spec.numeric]
                variance = [(f.maximum - f.minimum) ** 2 for f in self.spec.numeric]
            else:
                mean = [f.mean for f in self.spec.numeric]
                variance = [f.variance for f in self.spec.numeric]
            normalized = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(joined)
            noise = float(self.spec.augmentation.get("gaussian_noise", 0.0))
            if noise > 0:
                normalized = keras.layers.GaussianNoise(noise, name="gaussian_noise")(normalized)
            parts.append(normalized)
            parts += [calendar(inputs[f.input_name]) for f in self.spec.numeric if f.column in self.spec.dates]
        for cat in self.spec.categorical:
            index = keras.Input((1,), name=cat.input_name, dtype="int32")
            inputs[cat.input_name] = index
            size = len(cat.vocabulary) + 1
            if len(cat.vocabulary) > self.spec.max_one_hot:
                embedded = keras.layers.Embedding(size, embedding_dim(size), name=f"embed_{cat.input_name}")(index)
                parts.append(keras.layers.Flatten(name=f"flat_{cat.input_name}")(embedded))
            else:
                parts.append(
                    keras.layers.CategoryEncoding(
                        num_tokens=size, output_mode="one_hot", name=f"onehot_{cat.input_name}"
                    )(index)
                )
        encoded = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
        return inputs, encoded

    def _head(self, x: Any) -> Any:
        if self.spec.is_classification:
            return keras.layers.Dense(
                len(self.spec.classes), activation="softmax", dtype="float32", name="probabilities"
            )(x)
        standard = keras.layers.Dense(1, dtype="float32", name="standardized")(x)
        # The network learns a standardized target; this layer maps it back to label units.
        return keras.layers.Rescaling(
            self.spec.label_std, offset=self.spec.label_mean, dtype="float32", name="prediction"
        )(standard)

    def _loss(self) -> str:
        return "sparse_categorical_crossentropy" if self.spec.is_classification else "mse"
