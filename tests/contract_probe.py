"""A test-only copy of tunepipe's DAG whose fingerprint step takes one input more: ``label``.

A new step input is one :class:`~tunepipe.contract.Input` in the declaration and one field of the
step's ``Inputs``; here the field comes with a copy of the fingerprint step's module (this one),
which records what it was given and runs the real step. ``tests/component/test_declared_input.py``
shows the component, the pipeline and the in-process runner all pick the input up.
"""

from __future__ import annotations

import dataclasses

from tunepipe import fingerprint_step
from tunepipe.contract import Input, StepResult
from tunepipe.dag import DAG, FINGERPRINT

# Every Inputs the copied step ran with, in order.
SEEN: list[Inputs] = []


@dataclasses.dataclass(frozen=True)
class Inputs(fingerprint_step.Inputs):
    """The fingerprint step's inputs and the new one."""

    label: str


Outputs = fingerprint_step.Outputs


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Records ``inputs``, then runs the real fingerprint step."""
    SEEN.append(inputs)
    return fingerprint_step.run(inputs, outputs)


NEW_INPUT = Input("label", "label", "The label, which this copy's fingerprint step takes too.")
DAG_WITH_INPUT = DAG.replaced(
    dataclasses.replace(FINGERPRINT, module=__name__, inputs=(*FINGERPRINT.inputs, NEW_INPUT)))
