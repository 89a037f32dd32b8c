"""The validate step: every pipeline parameter checked before any data is read.

Nothing here imports pandas, Keras or TensorFlow: the step runs first in every run, so that a
value mistyped in the Kubeflow UI fails it in seconds, not in the step that reads the value.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from tunepipe.config.parameters import pipeline_defaults, validate_arguments
from tunepipe.contract import StepResult

log = logging.getLogger(__name__)

# Every pipeline parameter, named and typed as the pipeline declares them (tunepipe.config.parameters).
Inputs = dataclasses.make_dataclass(
    "Inputs", [(name, type(default)) for name, default in pipeline_defaults().items()], frozen=True,
    namespace={"__doc__": "Every pipeline parameter by name, as the pipeline received them.",
               "__module__": __name__},
)


@dataclass(frozen=True)
class Outputs:
    """Validate writes no artifact: its result is its returned value."""


def run(inputs: Any, outputs: Outputs) -> StepResult:
    """Checks every pipeline parameter (:func:`tunepipe.config.parameters.validate_arguments`).

    Args:
        inputs: An :data:`Inputs` (built at import, so typed as ``Any``).
        outputs: Nothing.

    Returns:
        As its value, the cross-validation settings the train step reads
        (:meth:`tunepipe.config.EvaluationConfig.cross_validation`), validated.

    Raises:
        ConfigError: The first wrong parameter, or every wrong key and value of the sections,
            with the messages ``tunepipe run`` gives for the same mistakes in a configuration file.
    """
    arguments = {field.name: getattr(inputs, field.name) for field in dataclasses.fields(inputs)}
    config = validate_arguments(arguments)
    log.info("tunepipe: %d pipeline parameters valid; data %s, label %r, task %s", len(arguments),
             config.data.uri, config.data.label, config.data.task)
    return StepResult(value=config.evaluation.cross_validation())
