"""The run summary the CLI prints: what a reader must not miss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipelines.cli import print_summary
from pipelines.errors import StepFailed
from tunepipe import artifacts

pytestmark = pytest.mark.unit


def test_summary_lists_test_labels_unseen_in_training(capsys) -> None:
    outcome = {
        artifacts.META_PUBLISHED: False, "task": "classification", "metrics": {"accuracy": 0.8},
        "blessing": {"blessed": False, "reason": "accuracy 0.8000 < 0.9", "champion": None},
        "unseen_labels": {"Pegasus": 1, "Unicornis": 3}, artifacts.META_REPORT: "",
    }
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x",
                                  logs=None))
    printed = capsys.readouterr().out
    assert "unseen labels:        4 test rows hold labels the model never learnt, scored as errors: " \
           "'Pegasus' (1), 'Unicornis' (3)" in printed
    outcome["unseen_labels"] = {}
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x",
                                  logs=None))
    assert "unseen labels" not in capsys.readouterr().out


def test_summary_gives_each_metric_its_interval_and_the_champion_difference(capsys) -> None:
    champion = {"version": 1, "metric": "accuracy", "candidate": 0.9, "champion": 0.95, "margin": 0.0,
                "passed": True, "error": None, "rule": "not_worse", "difference": -0.05, "low": -0.12, "high": 0.02}
    outcome = {
        artifacts.META_PUBLISHED: False, "task": "classification", "metrics": {"accuracy": 0.9, "log_loss": 0.3},
        "metric_intervals": {"accuracy": [0.82, 0.96], "log_loss": [0.21, 0.4]},
        "blessing": {"blessed": False, "reason": "failed thresholds: accuracy 0.9000 >= 0.95", "champion": champion},
        artifacts.META_REPORT: "",
    }
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x", logs=None))
    printed = capsys.readouterr().out
    assert ("test metrics:         accuracy 0.9000 [0.8200, 0.9600]  log_loss 0.3000 [0.2100, 0.4000] "
            "(in brackets: 95% CI)") in printed
    assert ("champion:             version 1: accuracy 0.9500 on this test split (candidate 0.9000; "
            "difference -0.0500, 95% CI -0.1200 to +0.0200; rule not_worse, margin 0)") in printed


def test_paths_typed_on_the_command_line_may_climb_but_config_locations_may_not(tmp_path, monkeypatch) -> None:
    from pipelines.cli import _parser, resolve_config
    from tunepipe.errors import ConfigError

    (tmp_path / "data").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "data" / "d.csv").write_text("x,y\n1,0\n")
    monkeypatch.chdir(tmp_path / "work")
    args = _parser().parse_args(["run", "--data", "../data/d.csv", "--label", "y", "--output", "out"])
    assert resolve_config(args).data.uri == str(tmp_path / "data" / "d.csv")
    (tmp_path / "work" / "c.yaml").write_text("data:\n  uri: ../data/d.csv\n  label: y\n")
    with pytest.raises(ConfigError, match=r"data\.uri.*'\.\.'"):
        resolve_config(_parser().parse_args(["run", "--config", "c.yaml"]))


def test_a_local_run_passes_only_pipeline_parameters_with_absolute_local_paths(tmp_path, monkeypatch) -> None:
    """Every key the CLI sends is a parameter of the pipeline (no flat names left from before sections)."""
    from pipelines.cli import local_run_arguments
    from tunepipe.config import load_config
    from tunepipe.config.parameters import pipeline_defaults

    (tmp_path / "d.csv").write_text("x,y\n1,a\n")
    (tmp_path / "schema.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    config = load_config(overrides={
        "data": {"uri": "d.csv", "label": "y", "baseline_schema_uri": "schema.json"},
        "export": {"export_root": "models"}, "training": {"min_delta": 0.1},
    })
    arguments, data_path = local_run_arguments(config)
    assert set(arguments) <= set(pipeline_defaults())
    assert data_path == tmp_path / "d.csv" and arguments["data_uri"] == str(tmp_path / "d.csv")
    assert arguments["data"]["baseline_schema_uri"] == str(tmp_path / "schema.json")
    assert arguments["export_root"] == str(tmp_path / "models")
    assert arguments["training"]["min_delta"] == 0.1


def test_summary_names_the_folder_of_step_logs(capsys) -> None:
    outcome = {
        artifacts.META_PUBLISHED: False, "task": "classification", "metrics": {"accuracy": 0.8},
        "blessing": {"blessed": False, "reason": "accuracy 0.8000 < 0.9", "champion": None},
    }
    print_summary(SimpleNamespace(outcome=outcome, cached_tasks=[], seconds=1.0, pipeline_root="runs/x",
                                  logs="runs/logs/tunepipe-1"))
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("  step logs:            runs/logs/tunepipe-1 (one file per step")


@pytest.mark.parametrize(("raised", "expected"), [
    (StepFailed(["    ingest: reading d.csv", "tunepipe: the whole log of step 'ingest': x.log", "error: no rows"]),
     ["    ingest: reading d.csv", "tunepipe: the whole log of step 'ingest': x.log", "error: no rows"]),
    (RuntimeError("Pipeline \x1b[95m'tunepipe'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m"),
     ["error: the pipeline failed: Pipeline 'tunepipe' finished with status FAILURE"]),
], ids=["failed step", "kfp.local"])
def test_a_failed_run_exits_1_and_ends_with_the_error_line(raised, expected, tmp_path, monkeypatch, capsys) -> None:
    from pipelines import local_run
    from pipelines.cli import main

    def failing(*args, **kwargs):
        raise raised

    monkeypatch.setattr(local_run, "run_pipeline", failing)
    (tmp_path / "d.csv").write_text("x,y\n1,a\n")
    status = main(["run", "--data", str(tmp_path / "d.csv"), "--label", "y", "--output", str(tmp_path / "out")])
    assert status == 1
    assert capsys.readouterr().err.splitlines() == expected  # not a terminal: no colour codes
