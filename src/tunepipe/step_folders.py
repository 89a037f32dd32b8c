"""What the step modules share about artifact folders: creating them, reading JSON, the outcome.

No TensorFlow, pandas or Keras here, directly or through another module: the fingerprint,
ingest, preprocess and refusal steps import this module and must start fast (see
``tests/unit/test_step_startup.py``).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.storage import atomic
from tunepipe.storage.locking import exclusive
from tunepipe.storage.tuner_state import TunerStateSync


def output_folder(path: PathLike) -> Path:
    """The folder at ``path``, created with its parents if missing (KFP hands out paths, not folders)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_metrics_file(path: PathLike, values: Any) -> None:
    """Writes a KFP metrics artifact's values as JSON at its own path.

    KFP keeps logged metrics in the artifact's metadata and writes no file; kfp.local treats a
    cache entry whose artifact has no file as broken and re-runs the step and everything after
    it, so every metrics artifact gets one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(values))


def read_json(folder: PathLike, name: str) -> Any:
    """The JSON file ``name`` inside ``folder``, parsed."""
    return json.loads((Path(folder) / name).read_text())


def write_outcome(outcome_dir: PathLike, outcome: dict[str, Any]) -> None:
    """Writes ``outcome.json`` (published card or refused decision) whole into ``outcome_dir``."""
    atomic.write_text(output_folder(outcome_dir) / artifacts.OUTCOME_FILE, json.dumps(outcome, indent=2))


def one_run_at_a_time(location: str, sync: TunerStateSync | None, step: str) -> AbstractContextManager[None]:
    """A lock on a local shared folder (concurrent runs take turns); nothing for mirrored gs:// state."""
    return exclusive(location, step) if sync is None else nullcontext()
