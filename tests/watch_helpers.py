"""Shared by the watcher's tests (unit, cluster and gcs tiers): snapshots written the way writers
write them, a champion with a model card, and a launcher that records what it started."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import tunepipe
from tunepipe.publishing import layout
from tunepipe.publishing.publish import Champion
from tunepipe.reports import modelcard
from tunepipe.storage.hashing import sha256_bytes

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"


def penguin_rows(part: int, rows: int = 20) -> str:
    """CSV text of ``rows`` penguins (a different slice per ``part``)."""
    frame = pd.read_csv(PENGUINS)
    return frame.iloc[part * rows % len(frame):][:rows].to_csv(index=False)


@dataclass
class RecordingLauncher:
    """Starts nothing: records each launch, and finds runs by name as a real launcher does."""

    runs: dict[str, str] = field(default_factory=dict)  # run name -> snapshot
    launches: list[str] = field(default_factory=list)

    def find(self, run_name: str) -> str | None:
        return f"run-{run_name}" if run_name in self.runs else None

    def launch(self, run_name: str, snapshot_uri: str) -> str:
        assert run_name not in self.runs, f"second launch of {run_name}"
        self.runs[run_name] = snapshot_uri
        self.launches.append(snapshot_uri)
        return f"run-{run_name}"


def write_local_champion(export_root: Path, model_name: str, label: str, task: str, features: dict) -> None:
    """A published version 1 as the watcher's guard reads it: the CHAMPION pointer and a model card."""
    card = {modelcard.CARD_LABEL: label, modelcard.CARD_TASK: task,
            modelcard.CARD_SCHEMA: {"numeric": [], "categorical": [], "features": features}}
    data = json.dumps(card).encode()
    card_path = export_root / model_name / "1" / layout.MODEL_CARD
    card_path.parent.mkdir(parents=True)
    card_path.write_bytes(data)
    pointer = Champion(1, sha256_bytes(data), "2026-12-04T00:00:00+00:00")
    (export_root / model_name / "CHAMPION").write_bytes(pointer.to_bytes())


PENGUIN_FEATURES = {name: {"type": kind} for name, kind in (
    ("island", "categorical"), ("bill_length_mm", "numeric"), ("bill_depth_mm", "numeric"),
    ("flipper_length_mm", "numeric"), ("body_mass_g", "numeric"), ("sex", "categorical"))}
