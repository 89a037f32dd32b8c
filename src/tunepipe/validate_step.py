"""The validate step's entry point: every pipeline parameter checked before any data is read.

Nothing here imports pandas, Keras or TensorFlow: the step runs first in every run, so that a
value mistyped in the Kubeflow UI fails it in seconds, not in the step that reads the value.
"""

from __future__ import annotations

import logging
from typing import Any

from tunepipe.config.parameters import validate_arguments

log = logging.getLogger(__name__)


def validate_step(arguments: dict[str, Any]) -> dict[str, int]:
    """Checks every pipeline parameter (:func:`tunepipe.config.parameters.validate_arguments`).

    Args:
        arguments: Every pipeline parameter by name, as the pipeline received them.

    Returns:
        The cross-validation settings the train step reads
        (:meth:`tunepipe.config.EvaluationConfig.cross_validation`), validated.

    Raises:
        ConfigError: The first wrong parameter, or every wrong key and value of the sections,
            with the messages ``tunepipe run`` gives for the same mistakes in a configuration file.
    """
    config = validate_arguments(arguments)
    log.info("tunepipe: %d pipeline parameters valid; data %s, label %r, task %s", len(arguments),
             config.data.uri, config.data.label, config.data.task)
    return config.evaluation.cross_validation()
