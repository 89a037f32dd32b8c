"""The run summary the CLI prints: what a reader must not miss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipelines.cli import print_summary
from tunepipe import artifacts

pytestmark = pytest.mark.unit


def test_summary_lists_test_labels_unseen_in_training(capsys) -> None:
    outcome = {
        artifacts.META_PUBLISHED: False, "task": "classification", "metrics": {"accuracy": 0.8},
        "blessing": {"blessed": False, "reason": "accuracy 0.8000 < 0.9", "champion": None},
        "unseen_labels": {"Pegasus": 1, "Unicornis": 3}, artifacts.META_REPORT: "",
    }
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x"))
    printed = capsys.readouterr().out
    assert "unseen labels:        4 test rows hold labels the model never learnt, scored as errors: " \
           "'Pegasus' (1), 'Unicornis' (3)" in printed
    outcome["unseen_labels"] = {}
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x"))
    assert "unseen labels" not in capsys.readouterr().out
