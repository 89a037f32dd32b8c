"""Whole ``tunepipe run`` drills: killed twice and run again, then three runs at once.

The runs share one output folder, as a user re-running the same command would: one
``pipeline_root`` (kfp.local's run folders and cache), one tuner root and one export root.
The kill takes the whole process group (the CLI and kfp.local's step subprocesses), at a
point read from the run's own log and files, never a fixed sleep.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tunepipe import artifacts
from tunepipe.publishing import layout
from tunepipe.publishing.publish import manifest, read_local_champion
from tunepipe.storage.hashing import sha256_file

pytestmark = pytest.mark.drills

TRAIN_EPOCHS = 40  # long enough for the kill to land between two epochs, at about 0.1 s an epoch
CONFIG = {
    "tuning": {"max_epochs": 2, "patience": 1},  # Hyperband: 2 trials
    "search_space": {"hidden_layers": 1, "units": {"min": 8, "max": 32, "step": 8}, "batch_size": [32]},
    "training": {"max_epochs": TRAIN_EPOCHS, "patience": TRAIN_EPOCHS, "lr_schedule": "none"},
    "evaluation": {"cv_folds": 0},
}
# Identical but for force_export, an input of evaluate only: ingest to train come from the cache.
FORCED = {**CONFIG, "evaluation": {**CONFIG["evaluation"], "force_export": True}}
CONCURRENT_RUNS = 3


class Run:
    """``tunepipe run --verbose`` in its own process group, its output read line by line on a thread.

    Verbose: the drills watch the steps' own lines (trials, epochs) as they are printed.
    """

    def __init__(self, workspace: Path, config: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "run", "--verbose", "--config", config, "--output", "out"],
            cwd=workspace,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, condition, what: str, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the run ended before {what}:\n{self.output[-4000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s"
            time.sleep(0.02)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the CLI and every step it started
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)

    def finish(self, timeout: float = 900) -> str:
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=60)
        assert self.process.returncode == 0, f"exit {self.process.returncode}\n{self.output[-6000:]}"
        return self.output


def backup_epoch(backup: Path) -> int:
    """The epoch the training backup's counter names (0 before the first one)."""
    try:
        return int(json.loads((backup / artifacts.BACKUP_KERAS_DIR / "training_metadata.json").read_text())["epoch"])
    except FileNotFoundError:
        return 0


def started_trials(output: str) -> set[str]:
    return set(re.findall(r"tune: trial (\d+) started", output))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drills")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    (folder / "forced.yaml").write_text(yaml.safe_dump(FORCED))
    return folder


def test_killed_run_resumes_without_redoing_finished_work(workspace: Path) -> None:
    # 1: killed during tuning, right after its first trial completed
    first = Run(workspace, "tiny.yaml")
    first.wait_for(lambda: "completed, val_loss=" in first.output, "completed trial")
    first.kill()
    done_before = {t for t in started_trials(first.output) if re.search(rf"trial {t} \(.*\) completed", first.output)}
    assert done_before and "exported model:" not in first.output

    # 2: resumes the search, then is killed during training, between two epochs
    second = Run(workspace, "tiny.yaml")
    second.wait_for(lambda: "train: per-epoch backup in" in second.output, "training")
    backup = Path(second.output.split("train: per-epoch backup in", 1)[1].split("\n", 1)[0].strip())
    second.wait_for(lambda: backup_epoch(backup) >= 2, "second epoch's backup")
    second.kill()
    killed_at = backup_epoch(backup)
    assert 2 <= killed_at < TRAIN_EPOCHS, "training ended before the kill"
    assert "served from the cache" in second.output  # ingest and preprocess finished in the first run
    assert f"resuming a search with {len(done_before)} completed trials" in second.output
    assert not started_trials(second.output) & done_before  # no completed trial ran again

    # 3: training resumes from the last backup; the model is published as version 1
    output = Run(workspace, "tiny.yaml").finish()
    assert f"train: resumed after epoch {killed_at}" in output  # only epochs after the backup run again
    assert f"epochs trained:       {TRAIN_EPOCHS} " in output  # and the history still covers every epoch
    assert "(version 1), now the champion" in output
    model_dir = workspace / "out" / "models" / "penguins"
    assert read_local_champion(model_dir).version == 1
    assert_whole_version(model_dir / "1")


def assert_whole_version(version_dir: Path) -> dict:
    """The version's model card names its own version and the checksum of every other file."""
    card = json.loads((version_dir / layout.MODEL_CARD).read_text())
    assert card["version"] == int(version_dir.name)
    files = manifest(version_dir)
    rendered = {layout.MODEL_CARD, layout.MODEL_CARD_MD}
    assert {name: entry["sha256"] for name, entry in card["files"].items()} == {
        name: entry["sha256"] for name, entry in files.items() if name not in rendered}
    return card


def test_three_runs_at_once_publish_three_distinct_whole_versions(workspace: Path) -> None:
    """After the drill above (version 1): three forced runs started together publish 2, 3 and 4."""
    root = workspace / "out" / "pipeline_root"
    runs_before = {p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("tunepipe")}
    runs = [Run(workspace, "forced.yaml") for _ in range(CONCURRENT_RUNS)]
    outputs = [run.finish() for run in runs]
    versions = sorted(int(re.search(r"\(version (\d+)\), now the champion", out).group(1)) for out in outputs)
    assert versions == [2, 3, 4]
    model_dir = workspace / "out" / "models" / "penguins"
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".")) == [
        "1", "2", "3", "4", artifacts.CHAMPION_FILE]
    assert not [p.name for p in model_dir.iterdir() if p.name.startswith((".staging-", ".champion-"))]
    pointer = read_local_champion(model_dir)
    assert pointer.version == 4  # the pointer never moves back to a lower version
    assert pointer.model_card_sha256 == sha256_file(model_dir / "4" / layout.MODEL_CARD)
    run_ids = {assert_whole_version(model_dir / str(v))["pipeline_run"]["id"] for v in versions}
    assert len(run_ids) == CONCURRENT_RUNS  # each version is one run's own model card
    runs_after = {p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("tunepipe")}
    assert len(runs_after - runs_before) == CONCURRENT_RUNS  # one run folder each, none shared


def test_runs_started_in_the_same_microsecond_get_their_own_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """kfp.local names run folders by the time to the microsecond; tunepipe's runs never share one."""
    from types import SimpleNamespace

    from kfp.local import executor_input_utils

    from pipelines.local_run import _unique_run_folders

    frozen = datetime.datetime(2026, 1, 1, 12, 0, 0, 123456)
    monkeypatch.setattr(executor_input_utils, "datetime",
                        SimpleNamespace(datetime=SimpleNamespace(now=lambda: frozen)))
    assert executor_input_utils.get_local_pipeline_resource_name("tunepipe") == (
        executor_input_utils.get_local_pipeline_resource_name("tunepipe"))  # what kfp.local alone would do
    with _unique_run_folders():
        names = {executor_input_utils.get_local_pipeline_resource_name("tunepipe") for _ in range(CONCURRENT_RUNS)}
    assert len(names) == CONCURRENT_RUNS
    assert all(name.startswith("tunepipe-2026-01-01-12-00-00-123456-") for name in names)
