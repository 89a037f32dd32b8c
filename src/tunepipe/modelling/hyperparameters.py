"""What every hypermodel shares: reading ranges into Keras Tuner hyperparameters, and fitting.

:class:`PipelineHyperModel` is the base of the tabular MLP (:mod:`tunepipe.modelling.model`)
and the image CNN (:mod:`tunepipe.modelling.image_model`): it holds the specification, the
search space and extra fit callbacks, and fits with the batch size the trial chose and the
steps per execution the data size calls for (:func:`steps_per_execution_for`). Kept in a module
of its own so the two model modules never import each other.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import keras_tuner

from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.data.features import PreprocessingSpec
from tunepipe.modelling.imbalance import class_weights

# What compile() sets: it holds for predict and evaluate calls outside a fit (8 batches per
# predict call). Every fit through PipelineHyperModel.fit uses steps_per_execution_for instead,
# then puts this back (see docs/tuning.md, "Efficient training"). It changes nothing about the maths.
STEPS_PER_EXECUTION = 8
# A fit of fewer training steps than this (steps per epoch x epochs) runs one step per call: see
# steps_per_execution_for.
SHORT_FIT_STEPS = 256
# The most steps per call: a whole epoch below it. Past ~64 steps a call the time per step no longer
# falls; the bound keeps a user's batch-level callbacks from waiting a whole epoch of a large table.
MAX_STEPS_PER_EXECUTION = 1024
# Rows per validation batch for models whose validation batches are cheap in memory (the tabular
# MLP; see PipelineHyperModel.validation_batch_size).
LARGE_VALIDATION_BATCH = 1024


def steps_per_execution_for(rows: int, batch_size: int, epochs: int = 1) -> int:
    """Training steps per call into the backend for a fit of ``epochs`` epochs over ``rows`` rows.

    The rule: with ``steps = ceil(rows / batch_size)`` per epoch, a fit of fewer than
    :data:`SHORT_FIT_STEPS` steps in all (``steps * epochs``) runs 1 step per call; any longer
    fit runs a whole epoch per call, at most :data:`MAX_STEPS_PER_EXECUTION` steps.

    Why, on the TensorFlow backend on CPU (measured on a shared 2-core machine, so roughly):
    each call from Python into a traced function costs about 1-2 ms beyond the step itself,
    which for an MLP this small is as much as the step; running ``n`` steps per call (Keras
    wraps them in a ``tf.while_loop``) pays it once per ``n`` steps, and a whole epoch per call
    trained 20,000 rows about 2.4x as fast per epoch as 1 step per call, with no measurable
    difference between 64, 256 and whole-epoch calls. But the loop costs about 0.3-0.5 s more
    to trace, once per fit for the train function and once for the validation (test)
    function, so a short fit (Hyperband's 1- and 3-epoch trials on a penguins-sized table:
    8 steps an epoch) is faster at 1 step per call; the break-even is a few hundred steps,
    hence :data:`SHORT_FIT_STEPS`.

    What it changes: nothing in the maths. Batch-level callbacks see only the last step of
    each call, at most :data:`MAX_STEPS_PER_EXECUTION` steps apart (the pipeline's own
    callbacks are epoch-level, see ``StopOnNonFiniteLoss``). Validation runs through the same loop
    (the whole validation split in one call when it is no longer than the training epoch).
    The PyTorch backend accepts only 1.
    """
    if keras.config.backend() == "torch":
        return 1
    steps = max(1, math.ceil(rows / max(1, batch_size)))
    if steps * max(1, epochs) < SHORT_FIT_STEPS:
        return 1
    return min(steps, MAX_STEPS_PER_EXECUTION)


def use_steps_per_execution(model: keras.Model, steps: int) -> None:
    """Sets ``model.steps_per_execution``, dropping traced functions that were made with another value.

    Keras reads the value when it traces the train, test and predict functions (and when a fit
    makes its epoch iterator); ``compile`` resets them, and so does this when the value changes.
    """
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        model.train_function = model.test_function = model.predict_function = None


def _rows(x: Any, batch_size: int = 1) -> int | None:
    """Rows of a fit's inputs (a dict, list or tuple of arrays, or one array); None when unknown.

    A ``tf.data`` dataset of known cardinality (a streamed split, :meth:`tunepipe.data.split.Split.inputs`)
    counts as ``batches x batch_size`` rows, which is all :func:`steps_per_execution_for` needs.
    """
    cardinality = getattr(x, "cardinality", None)
    if callable(cardinality):
        batches = int(cardinality())
        return batches * batch_size if batches > 0 else None
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, list | tuple):
        x = x[0] if x else None
    shape = getattr(x, "shape", None)
    if not shape or shape[0] is None:
        return None
    return int(shape[0])


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

    def validation_batch_size(self, batch_size: int) -> int | None:
        """Rows per validation batch in a fit at ``batch_size``; None: the training batch size (Keras' default).

        Validation is forward passes only, and its loss and metrics are means over all the
        validation rows whatever the batching (equal but for float rounding), so a model whose
        activations are small may validate in larger batches, which is faster.
        """
        return None

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """Fits with the batch size chosen by ``hp`` (a hyperparameter the model cannot hold).

        Tuning trials and final training both come here. The fit runs
        :func:`steps_per_execution_for` the number of rows, the batch size and the epochs it is
        asked for (``epochs - initial_epoch``); afterwards the compiled value is put back, so a
        later ``predict`` does not trace a whole epoch's batches into one call. Validation runs
        in batches of :meth:`validation_batch_size` unless the caller sets one. The specification's
        class weights (:mod:`tunepipe.modelling.imbalance`), when it has any, weigh the loss.
        """
        batch_size = int(hp.get("batch_size"))
        weights = class_weights(self.spec)
        if weights and kwargs.get("class_weight") is None:
            kwargs["class_weight"] = dict(enumerate(weights))
        if self.extra_callbacks:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), *self.extra_callbacks]
        rows = _rows(args[0] if args else kwargs.get("x"), batch_size)
        if rows is None:  # a generator or a dataset of unknown size: keep the compiled value
            return model.fit(*args, batch_size=batch_size, **kwargs)
        epochs = int(kwargs.get("epochs", 1)) - int(kwargs.get("initial_epoch", 0))
        if kwargs.get("validation_data") is not None and kwargs.get("validation_batch_size") is None:
            kwargs["validation_batch_size"] = self.validation_batch_size(batch_size)
        compiled = model.steps_per_execution
        use_steps_per_execution(model, steps_per_execution_for(rows, batch_size, epochs))
        try:
            return model.fit(*args, batch_size=batch_size, **kwargs)
        finally:
            use_steps_per_execution(model, compiled)
