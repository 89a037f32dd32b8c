"""The whole pipeline through kfp.local, driven by the ``tunepipe`` CLI in a subprocess.

Budgets are tiny (Hyperband max_epochs 2, final training at most 8 epochs) so the tier takes
a few minutes on two cores; what is checked is the plumbing and the guarantees, not accuracy.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.cli import sample_dataset
from tunepipe import artifacts
from tunepipe.publishing import layout

pytestmark = pytest.mark.local

TINY_CONFIG = {
    "tuning": {"max_epochs": 2, "patience": 1},
    "search_space": {"hidden_layers": {"min": 1, "max": 2}, "units": {"min": 8, "max": 32, "step": 8},
                     "batch_size": [32]},
    "training": {"max_epochs": 8, "patience": 3},
    "evaluation": {"cv_folds": 2},
}
# The deliberately weakened candidate: one epoch at a learning rate far too small to learn.
WEAK_CONFIG = {
    **TINY_CONFIG,
    "search_space": {**TINY_CONFIG["search_space"], "learning_rate": {"min": 1e-6, "max": 1e-6}},
    "training": {"max_epochs": 1, "patience": 1},
}
CLASSIFICATION_METRICS = {"accuracy", "precision", "recall", "f1", "precision_weighted", "recall_weighted",
                          "f1_weighted", "roc_auc", "log_loss"}


def tunepipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs the CLI as a user would; output is kept for the assertion messages."""
    command = [sys.executable, "-m", "pipelines.cli", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    (folder / "weak.yaml").write_text(yaml.safe_dump(WEAK_CONFIG))
    return folder


def published(model_dir: Path) -> list[str]:
    """Versions and the champion pointer; hidden staging and lock files are left out."""
    return sorted(p.name for p in model_dir.iterdir() if not p.name.startswith("."))


def summary_line(stdout: str, key: str) -> str:
    """One line of the run summary (which follows a line per step), without its indent."""
    summary = stdout[stdout.rindex("tunepipe run finished"):]
    return next(line.strip() for line in summary.splitlines() if line.strip().startswith(key))


def exported_path(stdout: str) -> Path:
    """The published version's folder, as the run summary names it."""
    exported = next(line for line in stdout.splitlines() if "exported model:" in line)
    return Path(exported.split("exported model:")[1].split(" (version")[0].strip())


def model_card(stdout: str) -> dict:
    return json.loads((exported_path(stdout) / layout.MODEL_CARD).read_text())


def step_logs(stdout: str) -> Path:
    """The run's folder of step logs, as the run names it when it starts."""
    return Path(re.search(r"^tunepipe: step logs in (\S+)$", stdout, re.MULTILINE).group(1))


def step_log(stdout: str, step: str) -> str:
    """One step's whole log: what kfp.local printed for it."""
    return (step_logs(stdout) / f"{step}.log").read_text()


# The steps of a run that publishes, in order (deploy is off by default).
PUBLISHING_STEPS = ("validate", "fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export")


@pytest.fixture(scope="module")
def penguin_result(workspace: Path) -> subprocess.CompletedProcess[str]:
    result = tunepipe("run", "--config", "tiny.yaml", "--output", "out", cwd=workspace)
    ok(result)
    return result


@pytest.fixture(scope="module")
def penguin_run(penguin_result: subprocess.CompletedProcess[str]) -> str:
    return penguin_result.stdout


def test_default_dataset_run_exports_a_verified_model(penguin_run: str, workspace: Path) -> None:
    card = model_card(penguin_run)
    assert card["version"] == 1 and card["model_name"] == "penguins"
    export = exported_path(penguin_run)
    assert export == (workspace / "out" / "models" / "penguins" / "1").resolve()
    assert card["task"] == "classification" and card["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(card["metrics"]) == CLASSIFICATION_METRICS
    assert card["metrics"]["accuracy"] > 0.6  # three balanced-ish classes: chance is about 0.44
    assert card["pipeline_run"]["id"] and card["pipeline_run"]["name"].startswith("tunepipe")
    assert card["cross_validation"]["folds"] == 2
    assert {"tunepipe", "keras", "kfp", "keras-tuner"} <= set(card["packages"])
    assert card["data"]["fingerprint"].startswith("sha256:")
    assert card["verification"]["max_abs_difference"] <= 1e-5
    assert (export / layout.SAVED_MODEL_PB).is_file()  # the version root is the SavedModel servers load
    assert {p.name for p in (export / artifacts.EXTRA_DIR).iterdir()} == {
        artifacts.MODEL_FILE, artifacts.MODEL_CARD_FILE, artifacts.MODEL_CARD_MD_FILE, artifacts.WARMUP_FILE}
    assert "test metrics:" in penguin_run and "best hyperparameters:" in penguin_run
    assert summary_line(penguin_run, "champion:").endswith("none yet (thresholds alone decide)")
    assert summary_line(penguin_run, "blessing:") == (
        "blessing:             blessed (no thresholds configured; no champion yet)")
    assert summary_line(penguin_run, "cross-validation:").startswith("cross-validation:     2 folds of 292 rows:")
    assert "now the champion" in summary_line(penguin_run, "exported model:")
    pointer = json.loads((export.parent / artifacts.CHAMPION_FILE).read_text())
    assert pointer["version"] == 1


def test_a_run_prints_a_line_per_step_and_files_kfp_locals_output_per_step(
    penguin_result: subprocess.CompletedProcess[str], workspace: Path,
) -> None:
    stdout = penguin_result.stdout
    assert len(stdout.splitlines()) <= 40, stdout
    assert penguin_result.stderr == ""
    assert "Executing task" not in stdout and "\x1b[" not in stdout  # kfp.local's lines are in the files
    folder = step_logs(stdout)
    assert folder.parent == (workspace / "out" / "logs").resolve()
    assert summary_line(stdout, "step logs:").startswith(f"step logs:            {folder} ")
    assert {path.name for path in folder.iterdir()} == {f"{step}.log" for step in PUBLISHING_STEPS} | {"run.log"}
    for step in PUBLISHING_STEPS:
        log = step_log(stdout, step)
        assert f"Executing task '{step}'" in log and f"Task '{step}' finished with status SUCCESS" in log
        assert "tunepipe: peak memory of this step:" in log and "\x1b[" not in log
        assert f"tunepipe: step '{step}' started" in stdout
        done = next(line for line in stdout.splitlines() if line.startswith(f"tunepipe: step '{step}' done in "))
        assert " MiB" in done
    assert "Pipeline 'tunepipe' finished with status SUCCESS" in (folder / "run.log").read_text()
    assert "tunepipe: step 'ingest' done in " in stdout and ": 344 rows after cleaning, classification" in stdout
    assert re.search(r"^tunepipe: step 'tune': 2/2 trials done, best val_loss \d", stdout, re.MULTILINE)
    assert re.search(r"^tunepipe: step 'export' done in .*: published penguins version 1$", stdout, re.MULTILINE)


def test_the_html_report_is_in_the_run_outputs(penguin_run: str, workspace: Path) -> None:
    report = Path(summary_line(penguin_run, "report:").split("report:")[1].strip())
    assert report.is_file() and report.is_relative_to((workspace / "out" / "pipeline_root").resolve())
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 2
    assert "Per class" in page and "Adelie" in page


def test_exported_saved_model_takes_raw_values_without_skew(penguin_run: str) -> None:
    """Raw rows (unscaled numbers, strings, empty cells) through the SavedModel match the .keras model."""
    import keras
    import tensorflow as tf

    card = model_card(penguin_run)
    export = exported_path(penguin_run)
    raw = pd.read_csv(sample_dataset()).dropna(subset=["species"])  # the shipped file has empty cells
    assert raw.drop(columns=["species"]).isna().any(axis=None)
    scalars = {}
    for name, described in card["signature"]["inputs"].items():
        column = raw[described["column"]]
        scalars[name] = (column.astype(str).where(column.notna(), "").to_numpy() if described["dtype"] == "string"
                         else column.to_numpy(np.float32))
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    served = serve(**{name: tf.constant(value) for name, value in scalars.items()})
    keras_model = keras.models.load_model(export / layout.KERAS_MODEL)
    expected = keras_model.predict({name: tf.constant(value.reshape(-1, 1)) for name, value in scalars.items()},
                                   verbose=0)
    probabilities = served["probabilities"].numpy()
    assert not np.isnan(probabilities).any()  # empty cells are filled inside the model
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    labels = [value.decode() for value in served["predicted_class"].numpy()]
    assert labels == [card["classes"][index] for index in probabilities.argmax(axis=1)]
    assert (np.array(labels) == raw["species"].to_numpy()).mean() > 0.6


def test_identical_second_run_is_served_from_cache(penguin_run: str, workspace: Path) -> None:
    second = ok(tunepipe("run", "--config", "tiny.yaml", "--output", "out", cwd=workspace))
    assert "every step served from the cache" in second
    cached = [step for step in PUBLISHING_STEPS if f"tunepipe: step '{step}' served from the cache" in second]
    assert cached == [step for step in PUBLISHING_STEPS if step != "fingerprint"]  # it always runs
    assert len(second.splitlines()) <= len(penguin_run.splitlines()) - 5
    assert model_card(second)["version"] == 1  # nothing re-exported
    assert published(workspace / "out" / "models" / "penguins") == ["1", artifacts.CHAMPION_FILE]


def test_a_candidate_worse_than_the_champion_is_refused(penguin_run: str, workspace: Path) -> None:
    """Same data, same export root, a weakened candidate: the champion (version 1) is better."""
    refused = ok(tunepipe("run", "--config", "weak.yaml", "--output", "out", cwd=workspace))
    champion_accuracy = model_card(penguin_run)["metrics"]["accuracy"]
    assert summary_line(refused, "champion:").startswith(
        f"champion:             version 1: accuracy {champion_accuracy:.4f} on this test split (candidate ")
    blessing = summary_line(refused, "blessing:")
    assert blessing.startswith("blessing:             NOT blessed (no thresholds configured; worse than champion "
                               "version 1 by more than margin 0 with 95% confidence: accuracy ")
    assert f" vs {champion_accuracy:.4f}, difference -" in blessing
    high = float(re.search(r"95% CI [-+][\d.]+ to ([-+][\d.]+)\)\)$", blessing).group(1))
    assert high < 0  # worse with 95% confidence: the whole interval of candidate - champion is below 0
    assert "exported model:       none" in refused
    model_dir = workspace / "out" / "models" / "penguins"
    assert published(model_dir) == ["1", artifacts.CHAMPION_FILE]
    assert json.loads((model_dir / artifacts.CHAMPION_FILE).read_text())["version"] == 1
    assert Path(summary_line(refused, "report:").split("report:")[1].strip()).is_file()


def test_the_stricter_rule_refuses_a_candidate_no_better_than_the_champion(
    penguin_run: str, workspace: Path
) -> None:
    """champion_rule better: the same configuration again trains the same model (tune and train come from
    the cache), which ties the champion on every row, so it is refused; the default rule blessed it."""
    better = {**TINY_CONFIG, "evaluation": {**TINY_CONFIG["evaluation"], "champion_rule": "better"}}
    (workspace / "better.yaml").write_text(yaml.safe_dump(better))
    refused = ok(tunepipe("run", "--config", "better.yaml", "--output", "out", cwd=workspace))
    assert "step 'train' served from the cache" in refused
    accuracy = model_card(penguin_run)["metrics"]["accuracy"]
    assert summary_line(refused, "champion:").endswith(
        f"(candidate {accuracy:.4f}; difference +0.0000, 95% CI +0.0000 to +0.0000; rule better, margin 0)")
    assert summary_line(refused, "blessing:").startswith(
        "blessing:             NOT blessed (no thresholds configured; not shown better than champion version 1 "
        "with 95% confidence: accuracy ")
    assert re.search(r"test metrics:         accuracy [\d.]+ \[[\d.]+, [\d.]+\]  ", refused)
    assert re.search(r"^tunepipe: step 'evaluate' done in .*: test accuracy [\d.]+ \(95% CI [\d.]+ to [\d.]+\); "
                     r"NOT blessed$", refused, re.MULTILINE)
    assert published(workspace / "out" / "models" / "penguins") == ["1", artifacts.CHAMPION_FILE]


def synthetic_regression(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(10, 3, rows), "x2": rng.normal(-5, 2, rows),
                          "colour": rng.choice(["red", "green", "blue"], rows)})
    frame["price"] = 3 * frame["x1"] - 2 * frame["x2"] + frame["colour"].map({"red": 5, "green": 0, "blue": -5})
    frame["price"] += rng.normal(0, 0.5, rows)
    frame.loc[::17, "x2"] = np.nan  # some missing values to impute
    return frame


def test_any_csv_regression_and_new_data_at_same_path_retrains(workspace: Path) -> None:
    data = workspace / "houses.csv"
    synthetic_regression(300, seed=0).to_csv(data, index=False)
    # This test is about retraining on new data, not about which model is better: a generous
    # champion margin (in rmse, price units) keeps the second model's blessing independent of chance.
    regression = {**TINY_CONFIG, "evaluation": {"champion_margin": 1000.0, "cv_folds": 0}}
    (workspace / "reg.yaml").write_text(yaml.safe_dump(regression))
    args = ("run", "--data", "houses.csv", "--label", "price", "--config", "reg.yaml", "--output", "reg")
    first = ok(tunepipe(*args, cwd=workspace))
    card = model_card(first)
    assert card["task"] == "regression" and card["model_name"] == "model"
    assert set(card["metrics"]) == {"mae", "rmse", "r2", "mape"}
    assert card["cross_validation"] is None  # cv_folds: 0 turns it off
    assert "cross-validation:" not in first
    synthetic_regression(300, seed=1).to_csv(data, index=False)  # new data, same path
    second = ok(tunepipe(*args, cwd=workspace))
    assert "step 'ingest' served from the cache" not in second
    # only the parameter check, whose inputs did not change, is reused: every data step re-ran
    assert "1 step served from the cache (validate)" in second
    assert model_card(second)["version"] == 2
    assert model_card(second)["data"]["fingerprint"] != card["data"]["fingerprint"]
    assert summary_line(second, "champion:").startswith("champion:             version 1: rmse ")
    # A threshold no model can meet: evaluated, not blessed, nothing published, still exit 0.
    strict = {**TINY_CONFIG, "evaluation": {"thresholds": {"rmse": 1e-9}, "champion_margin": 1000.0}}
    (workspace / "strict.yaml").write_text(yaml.safe_dump(strict))
    refused = ok(tunepipe(*args[:-4], "--config", "strict.yaml", "--output", "reg", cwd=workspace))
    assert "NOT blessed" in refused and "rmse" in refused and "exported model:       none" in refused
    assert published(workspace / "reg" / "models" / "model") == ["1", "2", artifacts.CHAMPION_FILE]


def test_bad_label_fails_clearly_and_exports_nothing(workspace: Path) -> None:
    result = tunepipe("run", "--data", sample_dataset(), "--label", "wingspan", "--config", "tiny.yaml",
                      "--output", "bad", cwd=workspace)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[-1].startswith("error: label column 'wingspan' not found; columns are ['species', "), errors
    log = step_logs(result.stdout) / "ingest.log"
    assert errors[-2] == f"tunepipe: the whole log of step 'ingest': {log}"
    assert any(line.startswith("    ingest: reading ") for line in errors[:-2])  # the step's own last lines
    assert len(result.stdout.splitlines()) + len(errors) <= 25, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("tunepipe: step 'ingest' FAILED after ")
    assert "Traceback" not in result.stdout + result.stderr and "\x1b[" not in result.stdout + result.stderr
    assert errors[-1] in log.read_text() and "Task 'ingest' finished with status FAILURE" in log.read_text()
    assert not any((workspace / "bad" / "models").rglob("*")), "nothing may be exported"


def test_verbose_shows_live_what_the_step_logs_keep(workspace: Path) -> None:
    args = ("run", "--data", sample_dataset(), "--label", "wingspan", "--config", "tiny.yaml", "--output", "loud")
    result = tunepipe(*args, "--verbose", cwd=workspace)
    assert result.returncode == 1
    assert "Executing task 'ingest'" in result.stdout and "\x1b[" not in result.stdout  # not a terminal
    folder = step_logs(result.stdout)
    filed = "".join((folder / f"{step}.log").read_text() for step in ("run", "validate", "fingerprint", "ingest"))
    shown = [line for line in result.stdout.splitlines() if not line.startswith("tunepipe: ")]
    assert [line for line in shown if line not in filed] == []  # nothing on screen is missing from the files
    assert result.stderr.splitlines()[-1].startswith("error: label column 'wingspan' not found")


def test_invalid_config_is_refused_before_running(workspace: Path) -> None:
    (workspace / "broken.yaml").write_text("tuning:\n  max_epochs: 1\n")
    result = tunepipe("run", "--config", "broken.yaml", "--output", "broken", cwd=workspace)
    assert result.returncode == 2
    assert "tuning.max_epochs" in result.stderr
    assert not (workspace / "broken").exists()


def test_budget_is_printed_and_a_rerun_resumes_the_finished_search(penguin_run: str, workspace: Path) -> None:
    """The tuner state lives under <output>/tuner keyed by data and search: --no-cache re-runs reuse it."""
    assert "Hyperband max_epochs=2 factor=3 schedules 2 trials and 4 epochs" in penguin_run
    folder = Path(re.search(r"tune: tuner state in (\S+)", step_log(penguin_run, "tune")).group(1))
    assert folder.parent == (workspace / "out" / "tuner" / "penguins").resolve()
    assert len(list(folder.glob("hyperband/trial_*/trial.json"))) == 2
    again = ok(tunepipe("run", "--config", "tiny.yaml", "--output", "out", "--no-cache", cwd=workspace))
    tuned = step_log(again, "tune")
    assert f"tune: tuner state in {folder} " in tuned
    assert "tune: resuming a search with 2 completed trials" in tuned
    assert " started" not in "\n".join(line for line in tuned.splitlines() if "tune: trial" in line)
    assert re.search(r"^tunepipe: step 'tune' done in .*: 2 trials \(2 resumed\), best score ", again, re.MULTILINE)
    assert len(list(folder.glob("hyperband/trial_*/trial.json"))) == 2
