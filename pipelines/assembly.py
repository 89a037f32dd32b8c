"""The pipeline's tasks, created by walking the DAG's declaration (:data:`tunepipe.dag.DAG`).

Each step becomes one task of its component, its inputs bound to pipeline parameters, upstream
outputs or the run's placeholders as declared, inside the ``dsl.If`` / ``dsl.Else`` branches it
runs under. Policies (placement, retries, caching, resources) are set on the tasks afterwards,
in :mod:`pipelines.pipeline`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from kfp import dsl

from tunepipe.contract import RUN_ID, RUN_NAME, Branch, Dag, Step

PLACEHOLDERS = {RUN_ID: dsl.PIPELINE_JOB_ID_PLACEHOLDER, RUN_NAME: dsl.PIPELINE_JOB_NAME_PLACEHOLDER}


def task_name(step: str) -> str:
    """The task's name in the compiled pipeline: KFP's name for the component (``record-refusal``)."""
    return re.sub("-+", "-", re.sub("[^-0-9a-z]+", "-", step.lower())).strip("-")


def display_name(step: str) -> str:
    """The task's name in the Kubeflow UI (``record refusal``)."""
    return step.replace("_", " ")


def channel(source: str, parameters: Mapping[str, Any], tasks: Mapping[str, Any]) -> Any:
    """What a declared ``source`` is inside the pipeline: a parameter, a task's output, a placeholder."""
    if source in PLACEHOLDERS:
        return PLACEHOLDERS[source]
    step, dot, output = source.partition(".")
    return tasks[step].outputs[output] if dot else parameters[source]


def _condition(branch: Branch, parameters: Mapping[str, Any], tasks: Mapping[str, Any]) -> AbstractContextManager[Any]:
    if branch.otherwise:
        return dsl.Else(name=branch.name)
    return dsl.If(channel(branch.source, parameters, tasks) == True, name=branch.name)  # noqa: E712 - a KFP condition


def _task(step: Step, components: Mapping[str, Any], parameters: Mapping[str, Any], tasks: Mapping[str, Any]) -> Any:
    arguments = {item.name: channel(item.source, parameters, tasks) for item in step.inputs}
    task = components[step.name](**arguments).set_display_name(display_name(step.name))
    for earlier in step.after:
        task.after(tasks[earlier])
    return task


def add_tasks(dag: Dag, components: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Creates a task for every step of ``dag``, in order, each inside the branches it runs under.

    A step whose branches differ from the previous step's leaves the branches it does not share
    (innermost first) and enters its own, so an ``otherwise`` branch opens right after the branch
    it is the Else of, as ``dsl.Else`` requires.

    Args:
        dag: The declaration.
        components: Each step's component by step name (:func:`components.build_components`).
        parameters: The pipeline's parameters (channels inside the pipeline function) by name.

    Returns:
        Each step's task by step name.
    """
    tasks: dict[str, Any] = {}
    entered: list[tuple[Branch, AbstractContextManager[Any]]] = []
    try:
        for step in dag.steps:
            shared = 0
            while shared < min(len(entered), len(step.branches)) and entered[shared][0] == step.branches[shared]:
                shared += 1
            while len(entered) > shared:
                entered.pop()[1].__exit__(None, None, None)
            for branch in step.branches[shared:]:
                context = _condition(branch, parameters, tasks)
                context.__enter__()
                entered.append((branch, context))
            tasks[step.name] = _task(step, components, parameters, tasks)
    finally:
        while entered:
            entered.pop()[1].__exit__(None, None, None)
    return tasks
