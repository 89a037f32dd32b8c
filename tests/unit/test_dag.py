"""The DAG's declaration holds together: every source names a parameter or an earlier step's output,
every step module's ``Inputs`` and ``Outputs`` have exactly the declared fields, branches test
booleans, and every step module of the core is declared once."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from tunepipe.contract import RETURNED, Branch, Dag, Input, Output
from tunepipe.dag import DAG, INGEST, REFERENCE, load

pytestmark = pytest.mark.unit
CORE = Path(__file__).resolve().parents[2] / "src" / "tunepipe"


def _source_problems(dag: Dag, step_name: str, source: str, ran: set[str]) -> list[str]:
    try:
        dag.kind(source)
    except KeyError as error:
        return [f"{step_name}: {error.args[0]}"]
    upstream = source.partition(".")[0] if "." in source else None
    return [f"{step_name}: {upstream} does not run before it"] if upstream and upstream not in ran else []


def _field_problems(dag: Dag, name: str) -> list[str]:
    step = dag.step(name)
    module = importlib.import_module(step.module)
    expected = {"Inputs": {item.name for item in step.inputs if not item.into},
                "Outputs": {output.name for output in step.outputs if output.written}}
    found = {kind: {field.name for field in dataclasses.fields(getattr(module, kind))} for kind in expected}
    return [f"{name}: {kind} has {sorted(found[kind])}, declared {sorted(expected[kind])}"
            for kind in expected if found[kind] != expected[kind]]


def declaration_problems(dag: Dag) -> list[str]:
    """Every way ``dag`` contradicts itself or its step modules, one line each."""
    problems: list[str] = []
    ran: set[str] = set()
    for step in dag.steps:
        for item in step.inputs:
            problems += _source_problems(dag, step.name, item.source, ran)
            if item.into and not step.input(item.into).section:
                problems.append(f"{step.name}.{item.name}: folded into {item.into!r}, which is no section")
            if item.state_root_of and item.state_root_of not in {output.name for output in step.outputs}:
                problems.append(f"{step.name}.{item.name}: no output {item.state_root_of!r} to place state beside")
        for branch in step.branches:
            unknown = _source_problems(dag, step.name, branch.source, ran)
            problems += unknown
            if not unknown and dag.kind(branch.source) != "bool":
                problems.append(f"{step.name}: branch {branch.name!r} tests no boolean")
        problems += [f"{step.name}: runs after {name}, which does not run before it"
                     for name in step.after if name not in ran]
        problems += _field_problems(dag, step.name)
        ran.add(step.name)
    problems += [f"outcome {source}: not a returned value" for source in dag.outcome
                 if source.partition(".")[2] != RETURNED or source.partition(".")[0] not in ran]
    return problems


def test_the_declaration_holds_together() -> None:
    assert declaration_problems(DAG) == []


def test_the_check_sees_a_broken_declaration() -> None:
    """Guards the guard: a source from a later step, a field the module lacks, a branch on a string."""
    broken = DAG.replaced(dataclasses.replace(
        INGEST, inputs=(*INGEST.inputs, Input("hyperparameters", "tune.best_hyperparameters")),
        outputs=(*INGEST.outputs, Output("sample", "Dataset")), branches=(Branch("odd", "label"),)))
    assert declaration_problems(broken) == [
        "ingest: tune does not run before it",
        "ingest: branch 'odd' tests no boolean",
        "ingest: Inputs has ['cleaning', 'data', 'data_fingerprint', 'data_uri', 'images', 'label', 'task'], "
        "declared ['cleaning', 'data', 'data_fingerprint', 'data_uri', 'hyperparameters', 'images', 'label', 'task']",
        "ingest: Outputs has ['cleaned_data', 'data_report'], declared ['cleaned_data', 'data_report', 'sample']",
    ]


def test_every_step_module_of_the_core_is_declared_once() -> None:
    declared = [step.module for step in DAG.steps]
    assert sorted(declared) == sorted(f"tunepipe.{path.stem}" for path in CORE.glob("*_step.py"))


def test_sources_have_kinds_and_unknown_names_are_refused() -> None:
    assert [DAG.kind(source) for source in ("seed", "data", "fingerprint.Output", "validate.Output",
                                            "evaluate.Output", "train.model", "@run_id")] == [
        "int", "dict", "str", "dict", "bool", "Model", "str"]
    for source, message in (("sede", "no pipeline parameter"), ("train.modle", "no output of step 'train'"),
                            ("ingest.Output", "returns nothing"), ("trian.model", "no step is called")):
        with pytest.raises(KeyError, match=message):
            DAG.kind(source)


def test_a_dag_is_found_by_its_reference() -> None:
    assert load(REFERENCE) is DAG
    for reference in ("tunepipe.dag", "tunepipe.dag:INGEST"):
        with pytest.raises(ValueError, match="does not name a Dag"):
            load(reference)
    with pytest.raises(KeyError, match="no step is called 'nothing'"):
        DAG.replaced(dataclasses.replace(INGEST, name="nothing"))
