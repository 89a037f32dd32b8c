"""Disk full: the training backup and the export location on a small tmpfs that runs out.

What must hold: one clear error naming the location and the cause, the last whole
checkpoint still resumes, and the champion (earlier versions and pointer) is untouched with
no partial version visible. Mounting a tmpfs needs root (CAP_SYS_ADMIN); without it the
tests are skipped with that reason, except under CI=true, where they must run.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

import tunepipe
from tunepipe import artifacts
from tunepipe.config import SearchSpace, SplitConfig, TrainingConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec, model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.errors import ExportError, TunepipeError
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.train import train_final
from tunepipe.publishing import layout
from tunepipe.publishing.export import export_model
from tunepipe.publishing.publish import manifest, read_local_champion

pytestmark = pytest.mark.drills

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
SPACE = SearchSpace(hidden_layers=1, units=8, activation=["relu"], dropout=0.0, learning_rate=1e-2, batch_size=[16])
EPOCHS, FULL_AFTER_EPOCH = 5, 2


def fill(folder: Path, leave: int = 0) -> Path:
    """Writes a file into ``folder`` until at most ``leave`` bytes are free; returns it."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
                if free <= leave:
                    break
                handle.write(b"\0" * min(free - leave, 1 << 16))
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts tmpfs filesystems of a given size (``"2m"``) under tmp_path; unmounts them afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


class FillDiskAfter(keras.callbacks.Callback):
    """Fills the backup's disk once epoch ``epoch``'s backup is written (it runs after BackupAndRestore)."""

    def __init__(self, folder: Path, epoch: int) -> None:
        super().__init__()
        self.folder, self.epoch = folder, epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.epoch:
            fill(self.folder)


def _training(extra: list[keras.callbacks.Callback]) -> tuple[TabularHyperModel, keras_tuner.HyperParameters]:
    spec = PreprocessingSpec("classification", "y", [NumericFeature("a", "a", 0.0, 1.0)], classes=["0", "1"])
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hypermodel.extra_callbacks = extra
    return hypermodel, hp


def test_disk_full_during_training_backup_keeps_the_last_checkpoint(small_disk, tmp_path: Path) -> None:
    disk = small_disk("1m")
    backup = disk / "backup"
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(64, 1)).astype(np.float32)}
    data = (x, (x["a"][:, 0] > 0).astype(np.int32))
    config = TrainingConfig(max_epochs=EPOCHS, patience=EPOCHS, lr_schedule="none")
    hypermodel, hp = _training([FillDiskAfter(disk, FULL_AFTER_EPOCH)])
    with pytest.raises(TunepipeError) as raised:
        train_final(hypermodel, hp, data, data, config, 0, backup)
    message = str(raised.value)
    assert str(backup) in message and "no space left" in message.lower(), message
    metadata = json.loads((backup / artifacts.BACKUP_KERAS_DIR / "training_metadata.json").read_text())
    assert metadata["epoch"] == FULL_AFTER_EPOCH  # the last whole checkpoint, not a torn one
    assert not [p for p in backup.rglob(".tmp-*")]  # the failed write's partial file is gone

    (disk / "filler").unlink()  # space again: the same training resumes from that checkpoint
    hypermodel, hp = _training([])
    result = train_final(hypermodel, hp, data, data, config, 0, backup)
    assert result.resumed_from_epoch == FULL_AFTER_EPOCH
    assert len(result.history["loss"]) == EPOCHS


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, PreprocessingSpec, pd.DataFrame]:
    root = tmp_path_factory.mktemp("penguins")
    run_ingest(str(PENGUINS), "species", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=1, verbose=0)
    return model, spec, Split.open(dirs[artifacts.TEST]).frame()


@pytest.mark.parametrize("runs_out_in", ["saved_model", layout.KERAS_MODEL])
def test_disk_full_during_export_keeps_the_champion(small_disk, trained, runs_out_in: str) -> None:
    """The disk fills while TensorFlow writes the SavedModel, or later while Keras writes model.keras."""
    model, spec, test = trained
    export_root = small_disk("16m")
    card = {"task": "classification", "metrics": {"accuracy": 0.5}}
    first = export_model(model, spec, str(export_root), "penguins", dict(card), test)
    model_dir = export_root / "penguins"
    pointer, version_one = (model_dir / artifacts.CHAMPION_FILE).read_bytes(), manifest(Path(first.location))
    keras_bytes = version_one[layout.KERAS_MODEL]["bytes"]
    saved_bytes = sum(e["bytes"] for name, e in version_one.items() if not name.startswith(artifacts.EXTRA_DIR))
    room = saved_bytes // 4 if runs_out_in == "saved_model" else saved_bytes + 16384 + keras_bytes // 4
    filler = fill(export_root, leave=room)

    with pytest.raises(ExportError) as raised:
        export_model(model, spec, str(export_root), "penguins", dict(card), test)
    message = str(raised.value)
    assert str(model_dir) in message and "no space left" in message.lower(), message
    assert (model_dir / artifacts.CHAMPION_FILE).read_bytes() == pointer
    assert manifest(model_dir / "1") == version_one
    assert sorted(p.name for p in model_dir.iterdir() if p.name != ".champion.lock") == ["1", artifacts.CHAMPION_FILE]

    filler.unlink()
    second = export_model(model, spec, str(export_root), "penguins", dict(card), test)
    assert second.version == 2 and read_local_champion(model_dir).version == 2
