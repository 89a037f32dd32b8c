"""One search space and one ``build_model(hp)`` for tuning and final training.

:class:`TabularHyperModel` builds a multilayer perceptron whose first layers apply the
preprocessing specification: a ``Normalization`` layer holding the training split's
statistics (z-score: means and variances; min-max: minimums and squared ranges, so the same
layer computes ``(x - min) / (max - min)``), optional ``GaussianNoise`` (training only), and
categorical indices one-hot encoded or, above ``max_one_hot`` values, embedded. Image data
gets :class:`~tunepipe.image_model.ImageHyperModel` instead (:func:`hypermodel_for`). Only
``keras.layers`` are used, with numpy inputs, so the same code runs on the TensorFlow, JAX or
PyTorch backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import keras_tuner

from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.features import PreprocessingSpec

# On CPU, running several steps per call into the backend roughly halves the step time of
# models this small (see GUIDE.md); it changes nothing about the maths.
STEPS_PER_EXECUTION = 8


def _int(hp: keras_tuner.HyperParameters, name: str, bounds: IntRange) -> int:
    if bounds.min == bounds.max:
        return int(hp.Fixed(name, bounds.min))
    return int(hp.Int(name, bounds.min, bounds.max, step=bounds.step))


def _float(hp: keras_tuner.HyperParameters, name: str, bounds: FloatRange) -> float:
    if bounds.min == bounds.max:
        return float(hp.Fixed(name, bounds.min))
    return float(hp.Float(name, bounds.min, bounds.max, step=bounds.step, sampling=bounds.sampling))


def embedding_dim(vocabulary_size: int) -> int:
    """Embedding width for a vocabulary: grows like size^0.56 (fast.ai's rule of thumb), at most 32."""
    return max(2, min(32, round(1.6 * math.pow(vocabulary_size, 0.56))))


def hypermodel_for(spec: PreprocessingSpec, space: SearchSpace) -> keras_tuner.HyperModel:
    """The CNN hypermodel for image data, the MLP for tables: chosen from the specification."""
    if spec.is_image:
        from tunepipe.image_model import ImageHyperModel

        return ImageHyperModel(spec, space)
    return TabularHyperModel(spec, space)


def _choice(hp: keras_tuner.HyperParameters, name: str, values: list[Any]) -> Any:
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values)


class TabularHyperModel(keras_tuner.HyperModel):
    """Builds and fits the tabular model for one set of hyperparameters.

    Args:
        spec: Preprocessing specification fitted on the training split.
        space: The search space; each range with min == max becomes a fixed value.
    """

    def __init__(self, spec: PreprocessingSpec, space: SearchSpace) -> None:
        super().__init__(name="tunepipe_mlp")
        self.spec = spec
        self.space = space

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs, encoded = self._encoded_inputs()
        layers = _int(hp, "hidden_layers", self.space.hidden_layers)
        units = _int(hp, "units", self.space.units)
        activation = _choice(hp, "activation", list(self.space.activation))
        dropout = _float(hp, "dropout", self.space.dropout)
        l2 = _float(hp, "l2", self.space.l2)
        learning_rate = _float(hp, "learning_rate", self.space.learning_rate)
        _choice(hp, "batch_size", list(self.space.batch_size))  # declared here, used in fit()
        x = encoded
        for index in range(layers):
            x = keras.layers.Dense(
                units, activation=activation, kernel_regularizer=keras.regularizers.L2(l2),
                name=f"hidden_{index}",
            )(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
        model = keras.Model(inputs, self._head(x), name="tunepipe_model")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=self._loss(),
            metrics=["accuracy"] if self.spec.is_classification else ["mae"],
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """Fits with the batch size chosen by ``hp`` (a hyperparameter the model cannot hold)."""
        return model.fit(*args, batch_size=int(hp.get("batch_size")), **kwargs)

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
            return keras.layers.Dense(len(self.spec.classes), activation="softmax", name="probabilities")(x)
        standard = keras.layers.Dense(1, name="standardized")(x)
        # The network learns a standardized target; this layer maps it back to label units.
        return keras.layers.Rescaling(self.spec.label_std, offset=self.spec.label_mean, name="prediction")(
            standard
        )

    def _loss(self) -> str:
        return "sparse_categorical_crossentropy" if self.spec.is_classification else "mse"
