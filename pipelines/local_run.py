"""Run the pipeline on this machine through ``kfp.local`` (the embedded default).

Local folders play the object store: ``<output>/pipeline_root`` holds every task's
artifacts and the local cache, ``<output>/models`` the exported models unless the
configuration names another export root.
"""

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp import local

from pipelines.pipeline import create_pipeline
from tunepipe import artifacts

CACHE_HIT_MARK = " cache hit "


class _CacheHits(logging.Filter):
    """Notes which tasks kfp.local served from its cache, from its log lines.

    A filter on the root logger, not a handler: kfp.local replaces the root handlers while
    it runs, but leaves the logger's filters alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if CACHE_HIT_MARK in message:
            task = message.split()[1]
            self.tasks.append(task)
            print(f"tunepipe: step {task!r} served from the cache", flush=True)
            return False  # replaced by the line above
        return True


@dataclass
class LocalRun:
    """What a local run produced: the model card, cache hits and timing."""

    card: dict[str, Any]
    pipeline_root: Path
    seconds: float
    cached_tasks: list[str] = field(default_factory=list)


def run_pipeline(arguments: dict[str, Any], output_dir: Path, cache: bool = True) -> LocalRun:
    """Runs the whole pipeline with ``SubprocessRunner(use_venv=False)``.

    Args:
        arguments: Pipeline parameters (see :func:`tunepipe.config.pipeline_arguments`).
        output_dir: Folder for ``pipeline_root`` (artifacts and cache).
        cache: Serve unchanged steps from the local cache (default on).

    Raises:
        RuntimeError: A step failed; kfp.local has printed its log above.
    """
    pipeline_root = (output_dir / "pipeline_root").resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        enable_caching=cache,
        raise_on_error=True,
    )
    hits = _CacheHits()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # kfp.local logs cache hits at INFO outside its own logging context
    root.addFilter(hits)
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # The image is only a name here: SubprocessRunner runs steps in this environment.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            warnings.filterwarnings("ignore", message=".*has no effect.*local")
            task = create_pipeline()(**arguments)
    finally:
        root.removeFilter(hits)
        root.setLevel(level)
    card_path = Path(task.output.path) / artifacts.MODEL_CARD_FILE
    card = json.loads(card_path.read_text())
    return LocalRun(card, pipeline_root, time.monotonic() - started, hits.tasks)
