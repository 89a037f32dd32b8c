"""Where a local run (``tunepipe run --output DIR``) keeps what outlives it, when the configuration names no place.

One rule for the run command and for the watcher that starts such runs (``tunepipe watch --local``),
which checks snapshots against the champion the runs publish. Paths are absolute: ``..`` is refused
in locations.
"""

from __future__ import annotations

from pathlib import Path


def local_export_root(output: str | Path) -> str:
    """``<output>/models``: where a local run publishes when ``export.export_root`` is not set."""
    return str((Path(output) / "models").resolve())


def local_tuner_root(output: str | Path) -> str:
    """``<output>/tuner``: where a local run keeps the tuner's state, so a re-run resumes the search."""
    return str((Path(output) / "tuner").resolve())
