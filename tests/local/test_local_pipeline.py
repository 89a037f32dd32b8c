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
    """One line of the run summary (which follows kfp.local's logs), without its indent."""
    summary = stdout[stdout.rindex("tunepipe run finished"):]
    return next(line.strip() for line in summary.splitlines() if line.strip().startswith(key))


def exported_path(stdout: str) -> Path:
    """The published version's folder, as the run summary names it."""
    exported = next(line for line in stdout.splitlines() if "exported model:" in line)
    return Path(exported.split("exported model:")[1].split(" (version")[0].strip())


def model_card(stdout: str) -> dict:
    return json.loads((exported_path(stdout) / layout.MODEL_CARD).read_text())


@pytest.fixture(scope="module")
def penguin_run(workspace: Path) -> str:
    return ok(tunepipe("run", "--config", "tiny.yaml", "--output", "out", cwd=workspace))


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
                               "version 1: accuracy ") and f"< {champion_accuracy:.4f} - margin 0)" in blessing
    assert "exported model:       none" in refused
    model_dir = workspace / "out" / "models" / "penguins"
    assert published(model_dir) == ["1", artifacts.CHAMPION_FILE]
    assert json.loads((model_dir / artifacts.CHAMPION_FILE).read_text())["version"] == 1
    assert Path(summary_line(refused, "report:").split("report:")[1].strip()).is_file()


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
    assert result.returncode != 0
    assert "label column 'wingspan' not found" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not any((workspace / "bad" / "models").rglob("*")), "nothing may be exported"


def test_invalid_config_is_refused_before_running(workspace: Path) -> None:
    (workspace / "broken.yaml").write_text("tuning:\n  max_epochs: 1\n")
    result = tunepipe("run", "--config", "broken.yaml", "--output", "broken", cwd=workspace)
    assert result.returncode == 2
    assert "tuning.max_epochs" in result.stderr
    assert not (workspace / "broken").exists()


def test_budget_is_printed_and_a_rerun_resumes_the_finished_search(penguin_run: str, workspace: Path) -> None:
    """The tuner state lives under <output>/tuner keyed by data and search: --no-cache re-runs reuse it."""
    assert "Hyperband max_epochs=2 factor=3 schedules 2 trials and 4 epochs" in penguin_run
    folder = Path(re.search(r"tune: tuner state in (\S+)", penguin_run).group(1))
    assert folder.parent == (workspace / "out" / "tuner" / "penguins").resolve()
    assert len(list(folder.glob("hyperband/trial_*/trial.json"))) == 2
    again = ok(tunepipe("run", "--config", "tiny.yaml", "--output", "out", "--no-cache", cwd=workspace))
    assert f"tune: tuner state in {folder} " in again
    assert "tune: resuming a search with 2 completed trials" in again
    assert " started" not in "\n".join(line for line in again.splitlines() if "tune: trial" in line)
    assert len(list(folder.glob("hyperband/trial_*/trial.json"))) == 2
