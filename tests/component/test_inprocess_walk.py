"""bench/inprocess.py walks the pipeline's declaration in one process: every step of a blessed run in
pipeline order, the steps of the other branches left out, and a step re-run alone on the work folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunepipe import artifacts
from tunepipe.config import load_config
from tunepipe.dag import DAG

pytestmark = pytest.mark.component
ROOT = Path(__file__).resolve().parents[2]
TINY = {"tuning": {"max_epochs": 2, "patience": 1},
        "search_space": {"hidden_layers": 1, "units": 8, "batch_size": [32]},
        "training": {"max_epochs": 2, "patience": 1}, "evaluation": {"cv_folds": 0}}


@pytest.fixture
def inprocess(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import inprocess

    return inprocess


def test_a_blessed_run_goes_through_export_and_a_step_reruns_alone(inprocess, tmp_path: Path) -> None:
    arguments = {**inprocess.default_arguments(load_config(None, TINY)), "export_root": str(tmp_path / "models")}
    run = inprocess.run_in_process(arguments, tmp_path / "work")

    assert list(run.seconds) == ["validate", "fingerprint", "ingest", "preprocess", "tune", "train", "evaluate",
                                 "export"]  # deploy is off, record_refusal is the other branch
    assert run.blessed is True and 0.0 <= run.metrics["accuracy"] <= 1.0 and "log_loss" in run.metrics
    outcome = json.loads((tmp_path / "work" / "export" / "outcome" / artifacts.OUTCOME_FILE).read_text())
    assert outcome[artifacts.META_PUBLISHED] is True and outcome["version"] == 1
    assert (tmp_path / "work" / "evaluate" / inprocess.RETURNED_FILE).read_text() == "true"

    refused = {**arguments, "thresholds": {"accuracy": 1.01}}
    assert inprocess.run_step(refused, tmp_path / "work", "evaluate") > 0  # reads train's folders from the work
    walk = inprocess.Walk(DAG, refused, tmp_path / "work")
    assert [walk.holds(DAG.step(name)) for name in ("export", "record_refusal")] == [False, True]
