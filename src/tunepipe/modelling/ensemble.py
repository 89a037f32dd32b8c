"""The model exported on small data: the average of the cross-validation models (bagging).

On a few hundred rows the final model of :func:`tunepipe.modelling.train.train_final` learns
from the training split alone (about 70 % of the rows) and early-stops on a validation split
of a few dozen, while k-fold cross-validation of the same configuration trains k models on
(k-1)/k of train + validation each. With ``training.small_data_model: bagged`` (default) the
exported model is their average: one Keras model whose k members each hold the preprocessing
fitted on the training split and whose output is the mean of the members' probabilities (or
predictions), so it serves through the same signature as a single model. No training is added
(the folds ran for the cross-validation figures anyway), and no member sees the test split.

``single`` keeps the early-stopped model; ``refit`` trains the configuration once more on all
of train + validation for the best epoch's count. The default was chosen from the quality
benchmark (``bench/quality.py``; docs/benchmarks.md): see docs/tuning.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd

from tunepipe.data.features import PreprocessingSpec, model_inputs, targets

log = logging.getLogger(__name__)

# The choices of training.small_data_model (tunepipe.config.TrainingConfig).
BAGGED, SINGLE, REFIT = "bagged", "single", "refit"
SMALL_DATA_MODELS = (BAGGED, SINGLE, REFIT)


def average(members: Sequence[keras.Model], name: str = "bagged") -> keras.Model:
    """One model whose output is the mean of ``members``' outputs, on the members' own inputs.

    The members must take the same inputs (names, shapes, dtypes) and give outputs of one shape:
    models built from one set of hyperparameters. Each becomes a nested model named
    ``member_<i>``; the average is computed in float32 (as the members' heads are).
    """
    if not members:
        raise ValueError("average needs at least one member model")
    inputs = keras.tree.map_structure(
        lambda tensor: keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=tensor.name), members[0].input
    )
    renamed = [keras.Model(member.input, member.output, name=f"member_{index}") for index, member in enumerate(members)]
    outputs = [member(inputs) for member in renamed]
    averaged = outputs[0] if len(outputs) == 1 else keras.layers.Average(dtype="float32", name="average")(outputs)
    return keras.Model(inputs, averaged, name=name)


def members_from_weights(
    hypermodel: keras_tuner.HyperModel, hyperparameters: keras_tuner.HyperParameters,
    weights: Sequence[Sequence[np.ndarray]],
) -> list[keras.Model]:
    """Rebuilds each fold model from its weights (the folds may have run in other processes)."""
    members = []
    for values in weights:
        member = hypermodel.build(hyperparameters)
        member.set_weights(list(values))
        members.append(member)
    return members


def refit(
    hypermodel: keras_tuner.HyperModel, hyperparameters: keras_tuner.HyperParameters, frame: pd.DataFrame,
    spec: PreprocessingSpec, epochs: int, seed: int,
) -> keras.Model:
    """The configuration trained once on every row of ``frame`` (train + validation) for ``epochs``
    epochs, with no early stopping (no rows are left to stop on)."""
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hyperparameters)
    hypermodel.fit(hyperparameters, model, model_inputs(frame, spec), targets(frame, spec), epochs=epochs, verbose=0)
    return model


def describe(kind: str, members: int, epochs: int, rows: int) -> dict[str, Any]:
    """What the train step records of the exported model (history.json's ``model``; the model card)."""
    return {"kind": kind, "members": members, "epochs": epochs, "rows": rows}
