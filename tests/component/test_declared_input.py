"""A new step input is declared once: the component, the compiled pipeline and the in-process runner
all take it from the declaration (``tests/contract_probe.py`` adds ``label`` to the fingerprint step of
a copy of the DAG)."""

from __future__ import annotations

import inspect
from pathlib import Path

import contract_probe  # on sys.path with the tests folder
import pytest
import yaml

from components import step_functions
from pipelines.pipeline import create_pipeline

pytestmark = pytest.mark.component
ROOT = Path(__file__).resolve().parents[2]
PROBE = "contract_probe:DAG_WITH_INPUT"


def test_the_component_signature_takes_the_new_input_and_hands_it_to_the_step() -> None:
    fingerprint = step_functions(PROBE)["fingerprint"]
    assert inspect.signature(fingerprint).parameters["label"].annotation is str
    assert "label" not in inspect.signature(step_functions()["fingerprint"]).parameters  # the real one: none

    hashed = fingerprint(data_uri="sample://penguins", data={}, label="species")

    assert hashed.startswith("sha256:")
    assert contract_probe.SEEN[-1].label == "species" and contract_probe.SEEN[-1].data_uri == "sample://penguins"


def test_the_compiled_pipeline_wires_the_new_input_to_its_parameter(tmp_path: Path) -> None:
    from kfp import compiler

    compiled = {}
    for name, reference in (("probe", PROBE), ("real", "tunepipe.dag:DAG")):
        compiler.Compiler().compile(create_pipeline(dag_reference=reference), str(tmp_path / f"{name}.yaml"))
        compiled[name] = next(yaml.safe_load_all((tmp_path / f"{name}.yaml").read_text()))  # the pipeline spec

    probe, real = compiled["probe"], compiled["real"]
    task = probe["root"]["dag"]["tasks"]["fingerprint"]["inputs"]["parameters"]
    assert task["label"] == {"componentInputParameter": "label"}
    declared = probe["components"]["comp-fingerprint"]["inputDefinitions"]["parameters"]
    assert declared["label"]["parameterType"] == "STRING"
    assert "label" not in real["root"]["dag"]["tasks"]["fingerprint"]["inputs"]["parameters"]


def test_the_in_process_runner_passes_the_new_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import inprocess

    arguments = {**inprocess.default_arguments(), "label": "island"}
    inprocess.run_step(arguments, tmp_path, "fingerprint", dag=contract_probe.DAG_WITH_INPUT)

    assert contract_probe.SEEN[-1].label == "island"
    assert (tmp_path / "fingerprint" / inprocess.RETURNED_FILE).read_text().startswith('"sha256:')
