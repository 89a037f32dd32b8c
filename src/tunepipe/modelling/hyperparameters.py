"""What every hypermodel shares: reading ranges into Keras Tuner hyperparameters, and fitting.

:class:`PipelineHyperModel` is the base of the tabular MLP (:mod:`tunepipe.modelling.model`)
and the image CNN (:mod:`tunepipe.modelling.image_model`): it holds the specification, the
search space and extra fit callbacks, and fits with the batch size the trial chose. Kept in
a module of its own so the two model modules never import each other.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.data.features import PreprocessingSpec

# On CPU, running several steps per call into the backend roughly halves the step time of
# models this small (see GUIDE.md); it changes nothing about the maths.
STEPS_PER_EXECUTION = 8


def int_value(hp: keras_tuner.HyperParameters, name: str, bounds: IntRange) -> int:
    """An integer hyperparameter over ``bounds``; a fixed value when ``min == max``."""
    if bounds.min == bounds.max:
        return int(hp.Fixed(name, bounds.min))
    return int(hp.Int(name, bounds.min, bounds.max, step=bounds.step))


def float_value(hp: keras_tuner.HyperParameters, name: str, bounds: FloatRange) -> float:
    """A float hyperparameter over ``bounds`` (with their step and sampling); fixed when ``min == max``."""
    if bounds.min == bounds.max:
        return float(hp.Fixed(name, bounds.min))
    return float(hp.Float(name, bounds.min, bounds.max, step=bounds.step, sampling=bounds.sampling))


def choice_value(hp: keras_tuner.HyperParameters, name: str, values: list[Any]) -> Any:
    """One of ``values``; a fixed value when there is only one."""
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values)


class PipelineHyperModel(keras_tuner.HyperModel):
    """A hypermodel over a preprocessing specification and a search space.

    Args:
        spec: Preprocessing specification fitted on the training split.
        space: The search space; each range with min == max becomes a fixed value.
        name: Keras Tuner's name of the hypermodel (``tunepipe_mlp``, ``tunepipe_cnn``).
    """

    def __init__(self, spec: PreprocessingSpec, space: SearchSpace, name: str) -> None:
        super().__init__(name=name)
        self.spec = spec
        self.space = space
        # appended to every fit's callbacks, after the caller's (e.g. mirroring a backup folder)
        self.extra_callbacks: list[keras.callbacks.Callback] = []

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """Fits with the batch size chosen by ``hp`` (a hyperparameter the model cannot hold)."""
        if self.extra_callbacks:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), *self.extra_callbacks]
        return model.fit(*args, batch_size=int(hp.get("batch_size")), **kwargs)
