"""Distributed Hyperband on one machine: a Keras Tuner chief and N workers as processes.

Keras Tuner's own protocol: every process builds the same tuner over the same directory; the
one whose ``KERASTUNER_TUNER_ID`` is ``chief`` serves the oracle over gRPC at
``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``; the others (``tuner0``, ``tuner1``, ...) ask
it for trials, train them and report back. Hyperband's later rounds load the parent trial's
checkpoint, which another worker may have written, hence the shared directory.

:func:`run_local_distributed` starts the chief and the workers as subprocesses of
``python -m tunepipe.execution.tuner_worker`` on loopback, gives each worker one GPU through
``CUDA_VISIBLE_DEVICES`` when GPUs are listed, prefixes and streams their output, and stops
every process it started when any of them fails or it is interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe.config import TuningConfig
from tunepipe.errors import TuningError

log = logging.getLogger(__name__)

WORKER_MODULE = "tunepipe.execution.tuner_worker"
CHIEF_ID = "chief"
LOOPBACK = "127.0.0.1"
# After the last worker exits, the chief has this long to notice and save the oracle.
CHIEF_GRACE_S = 60.0


def worker_arguments(
    search_space: dict[str, Any], tuning: TuningConfig, seed: int, directory: str,
    folders: tuple[str, str, str] | None = None, inputs: str | None = None,
) -> list[str]:
    """The arguments of ``python -m tunepipe.execution.tuner_worker``, without ``--bind``.

    The same for the chief and every worker, whether they run as processes here or as pods.

    Args:
        search_space: The search space (sent as JSON).
        tuning: The tuning section (sent as JSON).
        seed: Seeds the oracle and Keras in every process.
        directory: The shared tuner directory.
        folders: The training, validation and preprocessing folders, when the processes can
            read them (processes on this machine).
        inputs: Instead of ``folders``: the object-store copy of the three (pods elsewhere).
    """
    if inputs is not None and folders is None:
        source = ["--inputs", inputs]
    elif folders is not None and inputs is None:
        train, validation, spec = folders
        source = ["--train", train, "--validation", validation, "--spec", spec]
    else:
        raise ValueError("worker_arguments takes either folders or inputs, not both")
    return [
        *source, "--search-space", json.dumps(search_space), "--tuning", tuning.model_dump_json(),
        "--seed", str(seed), "--directory", directory,
    ]


def worker_id(index: int) -> str:
    """Keras Tuner's id of worker ``index``: ``tuner0``, ``tuner1``, ... (never containing ``chief``)."""
    return f"tuner{index}"


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def tuner_environment(tuner_id: str, oracle_ip: str, port: int, gpu: str | None) -> dict[str, str]:
    """The variables Keras Tuner's distribution reads, plus the GPU this process may use.

    ``gpu`` ``None`` leaves ``CUDA_VISIBLE_DEVICES`` as inherited; ``""`` hides every GPU
    (the chief only serves the oracle and needs none).
    """
    env = {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": oracle_ip, "KERASTUNER_ORACLE_PORT": str(port)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[str]
    reader: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._stream, daemon=True)
        self.reader.start()

    def _stream(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            print(f"[{self.name}] {line.rstrip()}", flush=True)


def _start(name: str, arguments: Sequence[str], extra_env: dict[str, str]) -> _Process:
    # The child inherits this environment (PATH, credentials of the pod) plus Keras Tuner's variables.
    env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"}
    popen = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, *arguments], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    return _Process(name, popen)


def _stop(processes: list[_Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
    for process in processes:
        try:
            process.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
        process.reader.join(timeout=5)


def run_local_distributed(
    arguments: Sequence[str],
    workers: int,
    gpus: Sequence[str] = (),
    on_poll: Callable[[], object] | None = None,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    port: int | None = None,
) -> None:
    """Runs one chief and ``workers`` workers of ``python -m tunepipe.execution.tuner_worker ARGUMENTS``.

    Args:
        arguments: The worker's command-line arguments (the same for every process; the role
            comes from ``KERASTUNER_TUNER_ID``).
        workers: Number of worker processes (each trains one trial at a time).
        gpus: GPU ids of this machine; worker ``i`` sees only ``gpus[i % len(gpus)]``. Empty
            (default) leaves devices as they are, e.g. on a CPU-only machine.
        on_poll: Called every ``poll_s`` seconds while the search runs, e.g. to mirror the
            tuner directory to the object store.
        poll_s: Seconds between liveness checks (default 1).
        timeout_s: Give up (and stop every process) after this long; ``None`` waits.
        port: The oracle's port on loopback; ``None`` picks a free one. ``arguments`` must
            hold the chief's ``--bind 127.0.0.1:PORT`` for the same port.

    Raises:
        TuningError: A process exited with an error, the chief did not finish after the
            workers, or the timeout passed. Every process is stopped first.
    """
    port = port or free_port()
    processes: list[_Process] = []
    started = time.monotonic()
    try:
        chief_gpu = "" if gpus else None
        processes.append(_start(CHIEF_ID, arguments, tuner_environment(CHIEF_ID, LOOPBACK, port, chief_gpu)))
        for index in range(workers):
            gpu = gpus[index % len(gpus)] if gpus else None
            env = tuner_environment(worker_id(index), LOOPBACK, port, gpu)
            processes.append(_start(worker_id(index), arguments, env))
        log.info("tune: distributed Hyperband: chief on %s:%d and %d workers", LOOPBACK, port, workers)
        _wait(processes, on_poll, poll_s, started, timeout_s)
    finally:
        _stop(processes)
        if on_poll is not None:
            on_poll()


def _wait(
    processes: list[_Process], on_poll: Callable[[], object] | None, poll_s: float, started: float,
    timeout_s: float | None,
) -> None:
    chief, workers = processes[0], processes[1:]
    workers_done_at: float | None = None
    while True:
        for process in processes:
            code = process.popen.poll()
            if code not in (None, 0):
                raise TuningError(f"distributed tuning: {process.name} exited with status {code} (its log is above)")
        workers_done = all(p.popen.poll() == 0 for p in workers)
        if workers_done and chief.popen.poll() == 0:
            return
        if workers_done:
            workers_done_at = workers_done_at or time.monotonic()
            if time.monotonic() - workers_done_at > CHIEF_GRACE_S:
                raise TuningError(f"distributed tuning: the chief ran on {CHIEF_GRACE_S:.0f} s after the workers")
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TuningError(f"distributed tuning did not finish within {timeout_s:.0f} s")
        if on_poll is not None:
            on_poll()
        time.sleep(poll_s)


def ensure_folder(path: str | Path) -> Path:
    """The folder, created if needed (the shared tuner directory must exist before the chief starts)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
