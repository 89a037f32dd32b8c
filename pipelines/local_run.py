"""Run the pipeline on this machine through ``kfp.local`` (the embedded default).

Local folders play the object store: ``<output>/pipeline_root`` holds every task's artifacts
and the local cache; models go to the export root (``<output>/models`` unless configured).
Two runners: ``subprocess`` runs each step as a subprocess of this Python environment;
``docker`` runs each step in the project image, as the image's non-root user.
"""

import json
import logging
import os
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp import local

from pipelines.pipeline import create_pipeline
from tunepipe.errors import ConfigError
from tunepipe.identity import IMAGE_UID

CACHE_HIT_MARK = " cache hit "
# The image's user (docker/Dockerfile); it joins the host user's group to share run folders.
# Steps that can be served from the cache: validate, ingest, preprocess, tune, train, evaluate and
# the export or refusal (the fingerprint step always runs, deploy is off by default).
CACHEABLE_STEPS = 7
# The ``docker`` package is the optional extra ``tunepipe[docker]``: only this runner needs it.
DOCKER_EXTRA_MISSING = '--runner docker needs the docker package: pip install "tunepipe[docker]"'


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
    """What a local run produced: its outcome (model card or refusal), cache hits and timing."""

    outcome: dict[str, Any]
    pipeline_root: Path
    seconds: float
    cached_tasks: list[str] = field(default_factory=list)


def local_output_folders(arguments: dict[str, Any]) -> list[Path]:
    """The local folders steps write outside the pipeline root: the export root and tuner root."""
    roots = (arguments.get("export_root") or "", arguments.get("tuner_root") or "")
    return [Path(root) for root in roots if root and "://" not in root]


def docker_runner(mounted: list[Path], image_uid: int = IMAGE_UID) -> Any:
    """A DockerRunner that bind-mounts ``mounted`` folders at the same paths.

    kfp.local mounts only the pipeline root; the data folder (read-only) and the export root
    must be mounted too. Steps run as the image's user in the host user's group, and the
    caller sets a group-writable umask, so each side can write the other's folders. As in a
    pod, the root filesystem is read-only and /tmp (a tmpfs here) is the scratch space.

    Raises:
        ConfigError: The ``docker`` package (the extra ``tunepipe[docker]``) is not installed.
    """
    try:
        from docker.types import Mount
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "docker":
            raise
        raise ConfigError(DOCKER_EXTRA_MISSING) from None

    mounts = [Mount(target=str(path), source=str(path), type="bind") for path in mounted]
    return local.DockerRunner(mounts=mounts, user=f"{image_uid}:{os.getgid()}", read_only=True, tmpfs={"/tmp": ""})


@contextmanager
def _group_writable() -> Any:
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def _unique_run_folders() -> Any:
    """Makes kfp.local's run folder names unique, not just different to the microsecond.

    kfp.local names a run's folder ``<pipeline>-<time to the microsecond>`` and creates it
    with ``exist_ok``: two runs that start in the same microsecond (several ``tunepipe run``
    on one output folder) would silently share one. A random suffix rules that out.
    """
    from kfp.local import executor_input_utils

    timestamped = executor_input_utils.get_local_pipeline_resource_name

    def unique(pipeline_name: str) -> str:
        return f"{timestamped(pipeline_name)}-{uuid.uuid4().hex[:6]}"

    executor_input_utils.get_local_pipeline_resource_name = unique
    try:
        yield
    finally:
        executor_input_utils.get_local_pipeline_resource_name = timestamped


@contextmanager
def _watching_cache() -> Any:
    hits = _CacheHits()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # kfp.local logs cache hits at INFO outside its own logging context
    root.addFilter(hits)
    try:
        yield hits
    finally:
        root.removeFilter(hits)
        root.setLevel(level)


def run_pipeline(
    arguments: dict[str, Any], output_dir: Path, cache: bool = True, runner: Any = None, image: str | None = None
) -> LocalRun:
    """Runs the whole pipeline through kfp.local.

    Args:
        arguments: Pipeline parameters (see :func:`tunepipe.config.pipeline_arguments`).
        output_dir: Folder for ``pipeline_root`` (artifacts and cache).
        cache: Serve unchanged steps from the local cache (default on).
        runner: A kfp.local runner; ``None`` means ``SubprocessRunner(use_venv=False)``.
        image: Project image the steps name (what the docker runner runs).

    Raises:
        RuntimeError: A step failed; kfp.local has printed its log above.
    """
    pipeline_root = (output_dir / "pipeline_root").resolve()
    with _group_writable():
        pipeline_root.mkdir(parents=True, exist_ok=True)
        folders = local_output_folders(arguments)
        created = [folder for folder in folders if not folder.exists()]
        for folder in folders:  # the docker runner bind-mounts them: they must exist
            folder.mkdir(parents=True, exist_ok=True)
        local.init(
            runner=runner or local.SubprocessRunner(use_venv=False),
            pipeline_root=str(pipeline_root),
            enable_caching=cache,
            raise_on_error=True,
        )
        started = time.monotonic()
        with _watching_cache() as hits, _unique_run_folders(), warnings.catch_warnings():
            # The image is only a name for SubprocessRunner, which runs steps in this environment.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            try:
                task = create_pipeline(image, retries=False)(**arguments)  # no preemption here to retry
            finally:  # a failed run leaves no empty output folder of its own making behind
                for folder in created:
                    if not any(folder.iterdir()):
                        folder.rmdir()
    outcome = json.loads(task.output)
    return LocalRun(outcome, pipeline_root, time.monotonic() - started, hits.tasks)
