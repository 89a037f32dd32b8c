"""Run the pipeline on this machine through ``kfp.local`` (the embedded default).

Local folders play the object store: ``<output>/pipeline_root`` holds every task's artifacts
and the local cache; models go to the export root (``<output>/models`` unless configured).
Two runners: ``subprocess`` runs each step as a subprocess of this Python environment;
``docker`` runs each step in the project image, as the image's non-root user. What kfp.local
prints goes to a log file per step under ``<output>/logs/<run>/`` (:mod:`pipelines.step_logs`);
the screen gets a line per step.
"""

import inspect
import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp import local

from pipelines.errors import StepFailed
from pipelines.pipeline import create_pipeline
from pipelines.step_logs import LOGS_DIR, Console, RunLog
from pipelines.step_results import step_result
from tunepipe.errors import ConfigError
from tunepipe.identity import IMAGE_UID

CACHE_HIT_MARK = " cache hit "
# The image's user (docker/Dockerfile); it joins the host user's group to share run folders.
# Steps that can be served from the cache: validate, ingest, preprocess, tune, train, evaluate and
# the export or refusal (the fingerprint step always runs, deploy is off by default).
CACHEABLE_STEPS = 7
# The ``docker`` package is the optional extra ``tunepipe[docker]``: only this runner needs it.
DOCKER_EXTRA_MISSING = '--runner docker needs the docker package: pip install "tunepipe[docker]"'


def _say_cached(task: str) -> None:
    print(f"tunepipe: step {task!r} served from the cache", flush=True)


class _CacheHits(logging.Filter):
    """Notes which tasks kfp.local served from its cache, from its log lines.

    A filter on the root logger, not a handler: kfp.local replaces the root handlers while
    it runs, but leaves the logger's filters alone.

    Args:
        report: Told each cached task's name, in place of kfp.local's line (default: a line on
            standard output; a run passes :meth:`pipelines.step_logs.RunLog.cached`).
    """

    def __init__(self, report: Callable[[str], None] = _say_cached) -> None:
        super().__init__()
        self.tasks: list[str] = []
        self._report = report

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if CACHE_HIT_MARK in message:
            task = message.split()[1]
            self.tasks.append(task)
            self._report(task)
            return False  # replaced by the report
        return True


@dataclass
class LocalRun:
    """What a local run produced: its outcome (model card or refusal), cache hits, timing and logs.

    ``logs`` is the run's folder of step logs (``<output>/logs/<run>``); ``None`` if no step ran.
    """

    outcome: dict[str, Any]
    pipeline_root: Path
    seconds: float
    cached_tasks: list[str] = field(default_factory=list)
    logs: Path | None = None


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
def _unique_run_folders(named: Callable[[str], None] = lambda name: None) -> Any:
    """Makes kfp.local's run folder names unique, not just different to the microsecond.

    kfp.local names a run's folder ``<pipeline>-<time to the microsecond>`` and creates it
    with ``exist_ok``: two runs that start in the same microsecond (several ``tunepipe run``
    on one output folder) would silently share one. A random suffix rules that out.
    ``named`` is told each name (the run's log folder takes it too).
    """
    from kfp.local import executor_input_utils

    timestamped = executor_input_utils.get_local_pipeline_resource_name

    def unique(pipeline_name: str) -> str:
        name = f"{timestamped(pipeline_name)}-{uuid.uuid4().hex[:6]}"
        named(name)
        return name

    executor_input_utils.get_local_pipeline_resource_name = unique
    try:
        yield
    finally:
        executor_input_utils.get_local_pipeline_resource_name = timestamped


@contextmanager
def _logging_steps(run_log: RunLog) -> Any:
    """Gives each task kfp.local runs its own log in ``run_log``, and a line on screen as it starts and ends.

    The seam is ``task_dispatcher.run_single_task_implementation``, which both runners go
    through: it logs the task's start and end and runs the task handler, whose output (the
    subprocess's pipe, the container's log stream) it prints, all on the calling thread and into
    ``sys.stdout`` (which :meth:`RunLog.capturing` routes to the task's file meanwhile).
    """
    from kfp.local import executor_input_utils, status, task_dispatcher

    original = task_dispatcher.run_single_task_implementation
    signature = inspect.signature(original)

    def logged(*args: Any, **kwargs: Any) -> Any:
        component = signature.bind(*args, **kwargs).arguments["component_name"]
        with run_log.step(executor_input_utils.get_local_task_resource_name(component)) as step:
            outputs, task_status = original(*args, **kwargs)
            ok = task_status == status.Status.SUCCESS
            run_log.finished(step, ok, step_result(step.name, outputs) if ok else "")
        return outputs, task_status

    task_dispatcher.run_single_task_implementation = logged
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = original


@contextmanager
def _watching_cache(report: Callable[[str], None] = _say_cached) -> Any:
    hits = _CacheHits(report)
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
    arguments: dict[str, Any], output_dir: Path, cache: bool = True, runner: Any = None, image: str | None = None,
    verbose: bool = False,
) -> LocalRun:
    """Runs the whole pipeline through kfp.local.

    Args:
        arguments: Pipeline parameters (see :func:`tunepipe.config.pipeline_arguments`).
        output_dir: Folder for ``pipeline_root`` (artifacts and cache) and ``logs`` (a folder of
            step logs per run).
        cache: Serve unchanged steps from the local cache (default on).
        runner: A kfp.local runner; ``None`` means ``SubprocessRunner(use_venv=False)``.
        image: Project image the steps name (what the docker runner runs).
        verbose: Also print everything kfp.local prints, as it prints it (default off: a line
            per step; the step logs hold the rest either way).

    Raises:
        StepFailed: A step failed; its ``lines`` end the run's output.
        RuntimeError: kfp.local failed outside any step.
    """
    pipeline_root = (output_dir / "pipeline_root").resolve()
    run_log = RunLog((output_dir / LOGS_DIR).resolve(), Console(sys.stdout), verbose)
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
        try:
            output, cached = run_logged(  # no preemption here to retry
                lambda: create_pipeline(image, retries=False)(**arguments).output, run_log)
        finally:  # a failed run leaves no empty output folder of its own making behind
            for folder in created:
                if not any(folder.iterdir()):
                    folder.rmdir()
    return LocalRun(json.loads(output), pipeline_root, time.monotonic() - started, cached, run_log.folder)


def run_logged(run: Callable[[], Any], run_log: RunLog) -> tuple[Any, list[str]]:
    """Calls ``run`` (a pipeline run through kfp.local, already initialised) with each step logged in ``run_log``.

    Returns:
        What ``run`` returned, and the tasks kfp.local served from its cache.

    Raises:
        StepFailed: A step failed: its ``lines`` end the run's output.
    """
    with run_log.capturing(), _watching_cache(run_log.cached) as hits, _unique_run_folders(run_log.open), \
            _logging_steps(run_log), warnings.catch_warnings():
        # The image is only a name for SubprocessRunner, which runs steps in this environment.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        try:
            result = run()
        except RuntimeError as error:
            if run_log.failed is None:
                raise
            raise StepFailed(run_log.failure_lines()) from error
    return result, hits.tasks
