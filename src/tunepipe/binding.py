"""How a declared step runs: its arguments become its ``Inputs`` and ``Outputs``, its result is recorded.

Every Kubeflow component's body is :func:`run_component` called with the component's arguments;
the in-process runner of the benchmarks calls :func:`bind` with folders instead. Artifacts are
taken by what they have, not by type (``path``, ``uri``, ``metadata``, and ``log_metric``,
``log_confusion_matrix``, ``log_roc_curve`` on metrics), so nothing here imports ``kfp``.

The step's module is imported by name when the step runs, so that a step that needs no
TensorFlow (validate, fingerprint, ingest, preprocess, refusal) loads none
(``tests/unit/test_step_startup.py``); this module itself imports nothing heavy.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from tunepipe.config import section
from tunepipe.contract import METRIC_KINDS, RETURNED, Dag, Step, StepResult
from tunepipe.dag import DAG, load
from tunepipe.step_folders import write_metrics_file
from tunepipe.step_logging import configure_logging
from tunepipe.storage.state_root import resolve_tuner_root


def step_module(step: Step) -> ModuleType:
    """The module of ``step`` (its ``Inputs``, ``Outputs`` and ``run``), imported now."""
    return importlib.import_module(step.module)


def bind(step: Step, module: ModuleType, arguments: Mapping[str, Any]) -> tuple[Any, Any]:
    """The step's ``Inputs`` and ``Outputs`` from its arguments, as its component receives them.

    Args:
        step: The step's declaration.
        module: Its module (:func:`step_module`).
        arguments: Every input and output by name: parameters as values, artifacts as objects
            with ``path`` and ``uri``.

    Returns:
        ``(module.Inputs(...), module.Outputs(...))``: artifacts as local paths (URIs where the
        input says so), sections validated with the UI parameters folded into them, outputs as
        the paths the step writes.

    Raises:
        ConfigError: A section or a UI parameter of it is invalid, naming the parameter.
    """
    raw = {item.name: _raw(step, item.name, arguments) for item in step.inputs}
    fields = {}
    for item in step.inputs:
        if item.into:
            continue
        if item.section:
            folded = {other.source: raw[other.name] for other in step.inputs if other.into == item.name}
            fields[item.name] = section(item.section, raw[item.name], **folded)
        else:
            fields[item.name] = raw[item.name]
    written = {output.name: arguments[output.name].path for output in step.outputs if output.written}
    return module.Inputs(**fields), module.Outputs(**written)


def _raw(step: Step, name: str, arguments: Mapping[str, Any]) -> Any:
    """One input's value before sections are built: a path or URI for an artifact, else the value."""
    item, value = step.input(name), arguments[name]
    upstream = item.upstream
    if upstream is not None and upstream[1] != RETURNED:
        value = value.uri if item.uri else value.path
    if item.state_root_of:
        value = resolve_tuner_root(value, arguments[item.state_root_of].uri, step.name)
    return value


def record(step: Step, result: StepResult, arguments: Mapping[str, Any]) -> None:
    """Notes ``result`` on the step's output artifacts: metadata, metrics, curves and references.

    Each metrics artifact also gets its values as a file at its own path: KFP keeps logged
    metrics in metadata alone, and kfp.local treats a cache entry whose artifact has no file as
    broken (:func:`~tunepipe.step_folders.write_metrics_file`).

    Raises:
        ValueError: The result names an output the step does not declare as such, or leaves a
            declared metrics output unrecorded.
    """
    def artifact(name: str, what: str, names: set[str]) -> Any:
        if name not in names:
            raise ValueError(f"step {step.name!r} declares no {what} output {name!r}")
        return arguments[name]

    def declared(*kinds: str) -> set[str]:
        return {output.name for output in step.outputs if output.kind in kinds}

    for name, values in result.metadata.items():
        artifact(name, "such", {output.name for output in step.outputs}).metadata.update(values)
    for name, scalars in result.metrics.items():
        target = artifact(name, "Metrics", declared("Metrics"))
        for key, value in scalars.items():
            target.log_metric(key, value)
        write_metrics_file(target.path, dict(scalars))
    for name, (classes, rows) in result.confusion_matrices.items():
        target = artifact(name, "ClassificationMetrics", declared("ClassificationMetrics"))
        if rows:
            target.log_confusion_matrix(classes, rows)
        write_metrics_file(target.path, rows)
    for name, curve in result.roc_curves.items():
        target = artifact(name, "ClassificationMetrics", declared("ClassificationMetrics"))
        if curve:
            target.log_roc_curve(curve["fpr"], curve["tpr"], curve["thresholds"])
        write_metrics_file(target.path, dict(curve))
    missing = declared(*METRIC_KINDS) - {*result.metrics, *result.confusion_matrices, *result.roc_curves}
    if missing:
        raise ValueError(f"step {step.name!r} recorded nothing for its metrics output(s) {', '.join(sorted(missing))}")
    places = [arguments[output.name] for output in step.outputs if output.written]
    for name, location in result.uris.items():
        references = {output.name for output in step.outputs if output.reference}
        artifact(name, "reference", references).uri = _as_uri(location, places)


def _as_uri(location: str, places: list[Any]) -> str:
    """``location``, a local path inside one of ``places`` (artifacts), as a URI under that artifact's."""
    if "://" not in location:
        for place in places:
            if Path(location).is_relative_to(place.path):
                return str(place.uri).rstrip("/") + "/" + os.path.relpath(location, place.path)
    return location


def returned(step: Step, result: StepResult) -> Any:
    """The value the step's component returns: ``result.value``, as one JSON string for ``json``."""
    return json.dumps(result.value) if step.returns == "json" else result.value


def run_component(name: str, arguments: dict[str, Any], dag: Dag | str = DAG) -> Any:
    """Runs the step ``name`` of ``dag`` as its component: the body of every component, which hands
    over its ``locals()``.

    Args:
        name: The step.
        arguments: The component's arguments by name.
        dag: The declaration, or where it is (``module:attribute``, as a component built from it
            names it: :func:`tunepipe.dag.load`); default :data:`tunepipe.dag.DAG`.

    Logging is configured first, so that an invalid section ends the step with one line
    (:func:`~tunepipe.step_logging.configure_logging`).
    """
    configure_logging()
    step = (load(dag) if isinstance(dag, str) else dag).step(name)
    module = step_module(step)
    result = module.run(*bind(step, module, arguments))
    record(step, result, arguments)
    return returned(step, result)
