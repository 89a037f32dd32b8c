"""Kill drills, one per step: SIGKILL in the middle of a file write, then the step runs again.

Each drill runs the step's function in a subprocess (``cutter.py``) that dies halfway through
writing a chosen file, then runs the same step again on the same folders, as a retried
pod would. What must hold: the killed run left no file under a final name that is not whole
(every file a reader would open parses), the re-run completes, tune and train redo no
finished trial or epoch beyond the interrupted one, and a killed export leaves the earlier
versions and the champion pointer byte for byte as they were.

Kills in the middle of the work itself (between trials, after an epoch) are drilled in
tests/unit/test_resume.py and, for a whole ``tunepipe run``, in test_run_drills.py.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cutter import run_step  # pytest puts this folder on sys.path

import tunepipe
from tunepipe import artifacts
from tunepipe.data.split import Split
from tunepipe.evaluation.champion import load_champion
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.publishing import layout
from tunepipe.publishing.publish import manifest, read_local_champion
from tunepipe.storage.hashing import sha256_file

pytestmark = pytest.mark.drills

CUTTER = Path(__file__).parent / "cutter.py"
PENGUINS = str(Path(tunepipe.__file__).parent / "datasets" / "penguins.csv")
SEARCH_SPACE = {
    "hidden_layers": 1, "units": {"min": 8, "max": 16, "step": 8}, "activation": ["relu"], "dropout": 0.0,
    "learning_rate": 1e-2, "batch_size": [32],
}
TUNING = {"max_epochs": 2, "factor": 3, "patience": 1}
TRAINING = {"max_epochs": 4, "patience": 10, "lr_schedule": "none"}
TRAIN_KILL_EPOCH = 2  # killed while writing this epoch's backup


def artifact(kind: str, path: Path | str) -> dict[str, str]:
    """An artifact argument of the cutter: its KFP kind and where it is."""
    return {"artifact": kind, "uri": str(path)}


def ingest_arguments(out: Path) -> dict[str, Any]:
    return {"data_uri": PENGUINS, "label": "species", "task": "auto", "data_fingerprint": "", "data": {},
            "cleaning": {}, "images": {}, "cleaned_data": artifact("Dataset", out / "cleaned"),
            "data_report": artifact("HTML", out / "data_report.html")}


def preprocess_arguments(cleaned: Path, out: Path) -> dict[str, Any]:
    splits = {f"{name}_data": artifact("Dataset", out / name)
              for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    return {"cleaned_data": artifact("Dataset", cleaned), "seed": 0, "split": {}, "preprocessing_settings": {},
            "augmentation": {}, **splits, "preprocessing": artifact("Artifact", out / "spec")}


def tune_arguments(run: SimpleNamespace, out: Path, tuner_root: Path | str) -> dict[str, Any]:
    return {**run.splits, "search_space": SEARCH_SPACE, "tuning": TUNING, "tune_max_epochs": TUNING["max_epochs"],
            "tune_iterations": 1, "tuner_root": str(tuner_root), "seed": 0, "model_name": "penguins",
            "data_fingerprint": "sha256:" + "ab" * 32, "gpu_count": 0,
            "best_hyperparameters": artifact("Artifact", out / "best"), "trials": artifact("Artifact", out / "trials"),
            "tuning_report": artifact("HTML", out / "tuning_report.html"),
            "metrics": artifact("Metrics", out / "tune_metrics")}


def train_arguments(run: SimpleNamespace, out: Path, tuner_root: Path | str) -> dict[str, Any]:
    return {**run.splits, "best_hyperparameters": artifact("Artifact", run.best), "search_space": SEARCH_SPACE,
            "training": TRAINING, "train_max_epochs": TRAINING["max_epochs"], "cross_validation": {"cv_folds": 0},
            "seed": 0, "tuner_root": str(tuner_root), "model_name": "penguins",
            "model": artifact("Model", out / "model"), "history": artifact("Artifact", out / "history"),
            "metrics": artifact("Metrics", out / "train_metrics")}


def evaluate_arguments(run: SimpleNamespace, out: Path, export_root: Path) -> dict[str, Any]:
    return {"model": artifact("Model", run.model), "test_data": artifact("Dataset", run.root / artifacts.TEST),
            "preprocessing": run.splits["preprocessing"], "history": artifact("Artifact", run.history),
            "evaluation_settings": {"cv_folds": 0}, "thresholds": {}, "export_root": str(export_root),
            "model_name": "penguins", "seed": 0, "metrics": artifact("Metrics", out / "metrics"),
            "confusion_matrix": artifact("ClassificationMetrics", out / "confusion_matrix"),
            "roc_curve": artifact("ClassificationMetrics", out / "roc_curve"),
            "evaluation": artifact("Artifact", out / "evaluation"), "blessing": artifact("Artifact", out / "blessing"),
            "report": artifact("HTML", out / "report.html")}


def export_arguments(run: SimpleNamespace, out: Path, export_root: Path) -> dict[str, Any]:
    return {"model": artifact("Model", run.model), "preprocessing": run.splits["preprocessing"],
            "test_data": artifact("Dataset", run.root / artifacts.TEST),
            "evaluation": artifact("Artifact", run.evaluation), "blessing": artifact("Artifact", run.blessing),
            "best_hyperparameters": artifact("Artifact", run.best), "history": artifact("Artifact", run.history),
            "cleaned_data": artifact("Dataset", run.root / "cleaned"), "report": artifact("HTML", ""),
            "export_root": str(export_root), "model_name": "penguins", "run_id": "drill", "run_name": "drill",
            "outcome": artifact("Artifact", out / "outcome"),
            "published_model": artifact("Model", out / "published_model"),
            "model_card": artifact("Markdown", out / "model_card")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Every step once, in this process, with a tiny budget: the inputs of the drills, and version 1."""
    root = tmp_path_factory.mktemp("steps")
    run_step("ingest", ingest_arguments(root))
    run_step("preprocess", preprocess_arguments(root / "cleaned", root))
    splits = {"train_data": artifact("Dataset", root / artifacts.TRAIN),
              "validation_data": artifact("Dataset", root / artifacts.VALIDATION),
              "preprocessing": artifact("Artifact", root / "spec")}
    out = SimpleNamespace(root=root, splits=splits, best=root / "best", model=root / "model",
                          history=root / "history", evaluation=root / "evaluation", blessing=root / "blessing",
                          export_root=root / "models")
    run_step("tune", tune_arguments(out, root, root / "tuner"))
    run_step("train", train_arguments(out, root, root / "tuner"))
    run_step("evaluate", evaluate_arguments(out, root, out.export_root))
    run_step("export", export_arguments(out, root, out.export_root))
    return out


def killed(step: str, arguments: dict[str, Any], name: str, occurrence: int = 1) -> str:
    """Runs ``step`` in a subprocess that dies halfway through writing its ``occurrence``-th ``name``;
    returns its output (stdout, then stderr)."""
    done = subprocess.run([sys.executable, str(CUTTER), step, json.dumps(arguments), name, str(occurrence)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def read_whole(path: Path) -> None:
    """Reads ``path`` as its consumer would; raises on a truncated file."""
    if path.suffix == ".json" or path.name == artifacts.CHAMPION_FILE:
        json.loads(path.read_text())
    elif path.suffix == ".parquet":
        pd.read_parquet(path)
    elif path.suffix == ".csv":
        pd.read_csv(path)
    elif path.suffix == ".html":
        assert path.read_text().rstrip().endswith("</html>"), f"{path}: truncated page"
    elif path.suffix == ".npz":  # the training backup's weights
        with np.load(path) as arrays:
            [arrays[key] for key in arrays.files]


def assert_only_whole_files(*folders: Path) -> list[str]:
    """Every file under a final (not hidden) name is whole; returns those names."""
    names = []
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else [folder] if folder.exists() else []:
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder.parent).parts):
                read_whole(path)
                names.append(path.name)
    return names


def test_killed_ingest_leaves_no_half_written_file_and_reruns(run: SimpleNamespace, tmp_path: Path) -> None:
    arguments = ingest_arguments(tmp_path)
    killed("ingest", arguments, artifacts.DATA_REPORT_FILE)
    left = assert_only_whole_files(tmp_path / "cleaned", tmp_path / "data_report.html")
    assert artifacts.DATA_REPORT_FILE not in left  # the file being written never appeared under its name
    run_step("ingest", arguments)
    assert set(assert_only_whole_files(tmp_path / "cleaned")) >= {
        artifacts.CLEANED_DATA_FILE, artifacts.SCHEMA_FILE, artifacts.DATA_REPORT_FILE}
    again = json.loads((tmp_path / "cleaned" / artifacts.SCHEMA_FILE).read_text())
    assert again == json.loads((run.root / "cleaned" / artifacts.SCHEMA_FILE).read_text())


def test_killed_preprocess_leaves_no_half_written_file_and_reruns(run: SimpleNamespace, tmp_path: Path) -> None:
    arguments = preprocess_arguments(run.root / "cleaned", tmp_path)
    killed("preprocess", arguments, artifacts.PREPROCESSING_SPEC_FILE)
    assert artifacts.PREPROCESSING_SPEC_FILE not in assert_only_whole_files(tmp_path)
    run_step("preprocess", arguments)
    spec = tmp_path / "spec" / artifacts.PREPROCESSING_SPEC_FILE
    assert spec.read_text() == (run.root / "spec" / artifacts.PREPROCESSING_SPEC_FILE).read_text()
    for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST):
        pd.testing.assert_frame_equal(Split.open(tmp_path / name).frame(), Split.open(run.root / name).frame())


def test_killed_tune_reruns_without_repeating_a_trial(
    run: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed while writing its outputs, after the whole search: the re-run runs no trial again."""
    arguments = tune_arguments(run, tmp_path, tmp_path / "tuner")
    output = killed("tune", arguments, artifacts.BEST_HYPERPARAMETERS_FILE)
    trials = hyperband_budget(TUNING["max_epochs"], TUNING["factor"]).trials
    assert output.count("tune: trial") >= trials  # the search had finished when the kill came
    assert artifacts.BEST_HYPERPARAMETERS_FILE not in assert_only_whole_files(tmp_path / "best")
    with caplog.at_level(logging.INFO):
        metadata = run_step("tune", arguments)["metadata"]["trials"]
    assert metadata[artifacts.META_RESUMED_TRIALS] == trials
    assert not [r for r in caplog.messages if r.startswith("tune: trial") and r.endswith("started")]
    assert json.loads((tmp_path / "best" / artifacts.BEST_HYPERPARAMETERS_FILE).read_text())


def test_killed_tune_mid_state_write_resumes_the_search(
    run: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed while Keras Tuner saves the next trial's state: the re-run reloads it and redoes no finished trial."""
    arguments = tune_arguments(run, tmp_path, tmp_path / "tuner")
    output = killed("tune", arguments, "trial.json", 5)  # 0000: created, 2 epochs, ended; 0001 being created
    done = set(re.findall(r"tune: trial (\d+) \(.*\) completed", output))
    assert done, output[-2000:]
    assert_only_whole_files(tmp_path / "tuner")  # oracle.json and every trial.json parse
    with caplog.at_level(logging.INFO):
        metadata = run_step("tune", arguments)["metadata"]["trials"]
    started = {m.split()[2] for m in caplog.messages if m.startswith("tune: trial") and m.endswith("started")}
    assert started and not started & done
    assert metadata[artifacts.META_TRIALS] == hyperband_budget(TUNING["max_epochs"], TUNING["factor"]).trials


@pytest.mark.parametrize("cut", [artifacts.BACKUP_BEST_WEIGHTS_FILE, "training_metadata.json"])
def test_killed_train_resumes_after_the_last_whole_backup(run: SimpleNamespace, tmp_path: Path, cut: str) -> None:
    """Killed while writing epoch 2's backup (the best weights: every epoch of this seeded run improves, so
    the backup's own weights are a copy of them; or the epoch counter last of all): the re-run trains epochs
    2-4 only, on a backup it can read."""
    arguments = train_arguments(run, tmp_path, tmp_path / "tuner")
    killed("train", arguments, cut, TRAIN_KILL_EPOCH)
    assert_only_whole_files(tmp_path / "tuner")
    metadata = run_step("train", arguments)["metadata"]["model"]
    assert metadata[artifacts.META_RESUMED_FROM_EPOCH] == TRAIN_KILL_EPOCH - 1  # only the interrupted epoch again
    assert metadata[artifacts.META_EPOCHS] == TRAINING["max_epochs"]  # the history covers every epoch once
    history = json.loads((tmp_path / "history" / artifacts.HISTORY_FILE).read_text())
    assert len(history["history"]["loss"]) == TRAINING["max_epochs"]


def test_killed_evaluate_leaves_no_half_written_file_and_reruns(run: SimpleNamespace, tmp_path: Path) -> None:
    arguments = evaluate_arguments(run, tmp_path, run.export_root)
    killed("evaluate", arguments, artifacts.BLESSING_FILE)
    assert artifacts.BLESSING_FILE not in assert_only_whole_files(tmp_path)
    assert run_step("evaluate", arguments)["metadata"]["blessing"][artifacts.META_BLESSED] is True
    assert_only_whole_files(tmp_path)
    assert json.loads((tmp_path / "blessing" / artifacts.BLESSING_FILE).read_text())["champion"]["version"] == 1


def version_files(model_dir: Path) -> dict[str, Any]:
    """Every published file's checksum, and the pointer's bytes: what a killed export must not change."""
    return {"pointer": (model_dir / artifacts.CHAMPION_FILE).read_bytes(),
            **{version.name: manifest(version) for version in model_dir.iterdir() if version.name.isdigit()}}


@pytest.mark.parametrize(("name", "published_before_kill"), [(artifacts.MODEL_CARD_FILE, False), (".champion-", True)])
def test_killed_export_keeps_the_champion_and_the_next_run_publishes(
    run: SimpleNamespace, tmp_path: Path, name: str, published_before_kill: bool
) -> None:
    """Killed writing the staged model card (before the rename), or the new pointer (after it)."""
    export_root = tmp_path / "models"
    shutil.copytree(run.export_root, export_root)
    model_dir = export_root / "penguins"
    before = version_files(model_dir)
    arguments = export_arguments(run, tmp_path, export_root)
    killed("export", arguments, name)
    after = version_files(model_dir)
    assert {key: after[key] for key in before} == before  # version 1 and the pointer, byte for byte
    assert read_local_champion(model_dir).version == 1
    if published_before_kill:  # version 2 was renamed into place whole, just not pointed at yet
        assert set(after) - set(before) == {"2"}
        card = json.loads((model_dir / "2" / layout.MODEL_CARD).read_text())
        assert card["version"] == 2
        assert {f: e["sha256"] for f, e in card["files"].items()} == {
            f: e["sha256"] for f, e in after["2"].items() if f not in (layout.MODEL_CARD,
                                                                        layout.MODEL_CARD_MD)}
    else:
        assert set(after) == set(before)  # no partial version is visible
    assert load_champion(str(export_root), "penguins", tmp_path).pointer.version == 1  # evaluate still reads it

    version = run_step("export", arguments)["value"][artifacts.META_VERSION]
    assert version == (3 if published_before_kill else 2)
    pointer = read_local_champion(model_dir)
    assert pointer.version == version
    assert pointer.model_card_sha256 == sha256_file(model_dir / str(version) / layout.MODEL_CARD)
    assert load_champion(str(export_root), "penguins", tmp_path).card["version"] == version
    assert version_files(model_dir)["1"] == before["1"]


def _lines(process: subprocess.Popen[str]) -> list[str]:
    """The process's output lines, collected on a thread as they come."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    return lines


def test_two_tunes_sharing_a_tuner_root_take_turns(run: SimpleNamespace, tmp_path: Path) -> None:
    """Two runs of one search at once (same tuner_root): the second waits, then resumes the finished search.

    The first is paused (SIGSTOP) once its first trial has started, so the second reaches the
    tuner folder while the first certainly holds it, however slow the machine.
    """
    tuner_root = tmp_path / "tuner"
    commands = [[sys.executable, str(CUTTER), "tune", json.dumps(tune_arguments(run, tmp_path / name, tuner_root)),
                 "-", "0"] for name in ("a", "b")]
    first = subprocess.Popen(commands[0], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_lines = _lines(first)
    wait_until(lambda: any(line.rstrip().endswith("started") for line in first_lines), first, "a trial")
    first.send_signal(signal.SIGSTOP)
    second = subprocess.Popen(commands[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second_lines = _lines(second)
    try:
        wait_until(lambda: any("in use by another run" in line for line in second_lines), second, "the wait")
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=600) == 0 and second.wait(timeout=600) == 0, "".join(first_lines + second_lines)[-4000:]
    trials = hyperband_budget(TUNING["max_epochs"], TUNING["factor"]).trials
    time.sleep(0.5)  # the reader threads take the last lines
    assert sum(line.rstrip().endswith("started") for line in first_lines) == trials
    assert not [line for line in second_lines if line.startswith("tune: trial")]  # none ran again
    result = json.loads(next(line for line in second_lines if line.startswith("RESULT")).split(" ", 1)[1])
    assert result["metadata"]["trials"][artifacts.META_RESUMED_TRIALS] == trials
    assert (tmp_path / "a" / "best" / artifacts.BEST_HYPERPARAMETERS_FILE).read_text() == (
        tmp_path / "b" / "best" / artifacts.BEST_HYPERPARAMETERS_FILE).read_text()


def wait_until(condition, process: subprocess.Popen[str], what: str, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


# A run's outputs as KFP's v2 backend places them: <pipeline root>/<pipeline>/<run id>/<task>/<attempt uuid>/<output>.
KFP_RUN = "5f2c1a0e-8b3d-4c6f-9a7e-0d1b2c3d4e5f"
KFP_ATTEMPTS = ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "77aa2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")


def component_arguments(run: SimpleNamespace, step: str, attempt: str) -> dict[str, Any]:
    """The tune or train component's arguments with ``tuner_root`` empty, as the pipeline's default sends
    them, with the outputs where KFP's backend places the ``attempt``'s."""
    task_root = run.kfp_root / "tunepipe" / KFP_RUN / step / attempt
    return (tune_arguments if step == "tune" else train_arguments)(run, task_root, "")


def retried(step: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The retried attempt, in a fresh process as a new pod: its outputs' metadata and its output."""
    done = subprocess.run([sys.executable, str(CUTTER), step, json.dumps(arguments), "-", "0"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(result.split(" ", 1)[1])["metadata"], done.stdout + done.stderr


def test_a_retried_tune_component_without_tuner_root_resumes_from_the_pipeline_root(
    run: SimpleNamespace, tmp_path: Path
) -> None:
    """Killed mid-search; the retry (new output folders, empty) redoes no finished trial."""
    run.kfp_root = tmp_path / "kfp-root"
    first, retry = (component_arguments(run, "tune", attempt) for attempt in KFP_ATTEMPTS)
    output = killed("tune", first, "trial.json", 5)
    done = set(re.findall(r"tune: trial (\d+) \(.*\) completed", output))
    assert done, output[-2000:]
    metadata, output = retried("tune", retry)
    started = set(re.findall(r"tune: trial (\d+) .*started", output))
    assert started and not started & done
    assert metadata["trials"][artifacts.META_TRIALS] == hyperband_budget(TUNING["max_epochs"], TUNING["factor"]).trials
    state = Path(metadata["trials"][artifacts.META_TUNER_DIRECTORY])
    assert state.parent == run.kfp_root / "tunepipe" / "tuner-state" / "penguins"


def test_a_retried_train_component_without_tuner_root_resumes_from_the_pipeline_root(
    run: SimpleNamespace, tmp_path: Path
) -> None:
    """Killed writing epoch 2's backup; the retry trains from there, under the same pipeline root."""
    run.kfp_root = tmp_path / "kfp-root"
    first, retry = (component_arguments(run, "train", attempt) for attempt in KFP_ATTEMPTS)
    killed("train", first, "training_metadata.json", TRAIN_KILL_EPOCH)
    assert list((run.kfp_root / "tunepipe" / "tuner-state" / "penguins").glob("train-*"))
    metadata, _ = retried("train", retry)
    assert metadata["model"][artifacts.META_RESUMED_FROM_EPOCH] == TRAIN_KILL_EPOCH - 1
    assert metadata["model"][artifacts.META_EPOCHS] == TRAINING["max_epochs"]
