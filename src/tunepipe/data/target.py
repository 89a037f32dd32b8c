"""The regression label's scale: a strictly positive, right-skewed label is learned on a log scale.

Prices, incomes, durations and amounts are positive and have a long right tail: a few rows are
many times the median. Fitted as they are, with a squared error, those few rows dominate the loss
and the model learns the tail at the expense of the typical row; on the log scale errors are
relative (10% off is the same loss at any price) and the tail is ordinary. The rule
(:func:`label_transform_for`), decided from the training split by preprocess and recorded in the
specification (``label_transform``):

- ``preprocessing.label_transform: auto`` (default): ``log`` when every training label is
  strictly positive, there are at least :data:`MIN_ROWS` of them, their skewness is at least
  :data:`SKEWNESS` (a long right tail: a log-normal with sigma 0.33 has skewness 1), and the log
  makes the distribution less skewed (it does not create a left tail longer than the right one
  it removes); ``none`` otherwise.
- ``log`` forces it (refused for a label that is not strictly positive); ``none`` keeps the label.

The model learns the standardised log of the label; the model train exports ends with the
exponential, so predictions, metrics and the served model are in the label's units
(:func:`tunepipe.modelling.model.in_label_units`). The exponential of a mean log is the geometric
mean, which sits below the arithmetic mean by about ``sigma^2 / 2`` of the log-scale residual
spread; no correction is applied (the median of the label given the features is predicted).
"""

from __future__ import annotations

import numpy as np

from tunepipe.errors import DataError

NONE, LOG = "none", "log"
# Skewness from which a positive label counts as long-tailed (Bulmer's rule of thumb: above 1 is
# highly skewed).
SKEWNESS = 1.0
# Training labels needed before their skewness is estimated at all.
MIN_ROWS = 30


def skewness(values: np.ndarray) -> float:
    """The sample skewness (Fisher-Pearson, g1) of ``values``; 0 for constant values."""
    values = np.asarray(values, dtype=np.float64)
    centred = values - values.mean()
    spread = np.sqrt(np.mean(centred**2))
    return float(np.mean(centred**3) / spread**3) if spread > 0 else 0.0


def label_transform_for(values: np.ndarray, setting: str = "auto", label: str = "label") -> tuple[str, float]:
    """The label's transform (``log`` or ``none``) and the skewness it was decided on.

    Args:
        values: Training labels (all of them, or a uniform sample).
        setting: ``preprocessing.label_transform``: ``auto`` (default), ``log`` or ``none``.
        label: The label's name, for the error.

    Raises:
        DataError: ``log`` asked for a label with a value at or below 0.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    skew = skewness(values) if len(values) else 0.0
    positive = bool(len(values)) and float(values.min()) > 0
    if setting == LOG:
        if not positive:
            raise DataError(f"preprocessing.label_transform: log needs a strictly positive label; {label!r} has "
                            f"values down to {float(values.min()) if len(values) else float('nan')}")
        return LOG, skew
    if setting == NONE or not positive or len(values) < MIN_ROWS or skew < SKEWNESS:
        return NONE, skew
    return (LOG, skew) if abs(skewness(np.log(values))) < abs(skew) else (NONE, skew)


def to_model_scale(values: np.ndarray, transform: str) -> np.ndarray:
    """Labels as the network learns them (the log for ``log``)."""
    return np.log(values) if transform == LOG else values


def to_label_units(values: np.ndarray, transform: str) -> np.ndarray:
    """A network's outputs in the label's units (the exponential for ``log``)."""
    return np.exp(np.asarray(values, dtype=np.float64)) if transform == LOG else values
