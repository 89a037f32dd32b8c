"""``tunepipe watch``: start one run per new complete data snapshot (see docs/watch.md).

    tunepipe watch gs://bucket/penguins/ --config team.yaml --host URL        # submit to Kubeflow Pipelines
    tunepipe watch /data/penguins/ --local --config team.yaml --output runs   # run locally
    tunepipe watch LOCATION [--marker _SUCCESS | --quiet-period 300] [--poll 60] [--once] [--skip-existing]

The loop lives in :mod:`tunepipe.watching`; this module adds the launchers that start runs
(:class:`KfpLauncher` on a cluster, :class:`LocalLauncher` through ``tunepipe run``), the liveness
endpoint and the command's options. A submit that fails with a transient error is retried with
the object stores' :class:`~tunepipe.storage.objectstore.RetryPolicy`, and before each retry the
run is looked up by name, so a submit whose answer was lost never starts a second run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ClusterError
from pipelines.local_folders import local_export_root
from pipelines.pipeline_root import pipeline_root_from
from pipelines.remote import connect, connection_options, run_options, run_parameters
from tunepipe.config import Config, load_config
from tunepipe.errors import ConfigError
from tunepipe.storage.objectstore import TRANSIENT, RetryPolicy
from tunepipe.watching.records import DEFAULT_LEASE_SECONDS, records_for
from tunepipe.watching.snapshots import DEFAULT_MARKER, Completeness
from tunepipe.watching.watcher import Watcher, watcher_identity

if TYPE_CHECKING:
    from tunepipe.watching.guard import Guard

DEFAULT_POLL_SECONDS = 60.0
DEFAULT_QUIET_SECONDS = 300.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def classify_cluster(error: BaseException) -> str | None:
    """How :class:`RetryPolicy` treats a Kubeflow Pipelines error: 429, 5xx and connection failures are
    retried; a refusal (401, 403, 404, 400) passes through as the ClusterError it is, not retried."""
    return TRANSIENT if isinstance(error, ClusterError) and error.transient else None


@dataclass
class KfpLauncher:
    """Submits runs of the uploaded pipeline (``tunepipe submit``'s options), one experiment, found by name.

    The pipeline version is the newest at each launch unless ``version_id`` pins one, so a
    long-running watcher picks up a new upload without a restart.
    """

    cluster: Any
    pipeline: str
    experiment: str
    parameters: dict[str, Any]
    version_id: str | None = None
    service_account: str | None = None
    caching: bool = True
    pipeline_root: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        self.experiment_id: str = self.retry.call(f"lookup of experiment {self.experiment!r}", lambda: (
            self.cluster.experiment_id(self.experiment, create=True)), classify_cluster)

    def find(self, run_name: str) -> str | None:
        result: str | None = self.retry.call(f"lookup of run {run_name!r}", lambda: self.cluster.run_named(
            self.experiment_id, run_name), classify_cluster)
        return result

    def launch(self, run_name: str, snapshot_uri: str) -> str:
        def attempt() -> str:
            existing = self.cluster.run_named(self.experiment_id, run_name)  # a lost answer's run
            if existing is not None:
                return str(existing)
            pipeline_id = self.cluster.require_pipeline_id(self.pipeline)
            version_id = self.version_id or self.cluster.latest_version(pipeline_id).pipeline_version_id
            run = self.cluster.submit(self.experiment_id, run_name, pipeline_id, version_id,
                                      {**self.parameters, "data_uri": snapshot_uri}, self.service_account,
                                      caching=self.caching, pipeline_root=self.pipeline_root)
            return str(run.run_id)

        result: str = self.retry.call(f"submit of run {run_name!r}", attempt, classify_cluster)
        return result


def _die_with_parent() -> None:
    """In the child: SIGKILL when the watcher dies, so a killed watcher leaves no run going on alone."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class LocalLauncher:
    """Runs ``tunepipe run --data <snapshot>`` here, one at a time; the run's id is its name.

    Each finished run (whatever its exit status) leaves ``<output>/watch/<run name>.json`` with
    its exit status and log; a run cut off by a watcher's death leaves none and is run again by
    the next watcher (its finished steps come from the cache).
    """

    output: Path
    config: str | None = None
    extra: list[str] = field(default_factory=list)

    def _result(self, run_name: str) -> Path:
        return self.output / "watch" / f"{run_name}.json"

    def find(self, run_name: str) -> str | None:
        return run_name if self._result(run_name).is_file() else None

    def launch(self, run_name: str, snapshot_uri: str) -> str:
        folder = self.output / "watch"
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"{run_name}.log"
        command = [sys.executable, "-m", "pipelines.cli", "run", "--data", snapshot_uri, "--output", str(self.output),
                   *(["--config", self.config] if self.config else []), *self.extra]
        started = time.time()
        print(f"watch: local run {run_name} of {snapshot_uri} starting (log: {log_path})", flush=True)
        with log_path.open("w") as log_file:
            status = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                    check=False).returncode
        result = {"run_name": run_name, "snapshot": snapshot_uri, "exit_status": status, "log": str(log_path),
                  "seconds": round(time.time() - started, 1)}
        temporary = self._result(run_name).with_suffix(".tmp")
        temporary.write_text(json.dumps(result, indent=1))
        temporary.replace(self._result(run_name))
        print(f"watch: local run {run_name} finished in {result['seconds']} s with exit status {status}", flush=True)
        return run_name


class Health:
    """``GET /healthz`` for the liveness probe: 200 while polls succeed, 503 once none has for ``stale_seconds``.

    A poll that fails after its retries does not count; so a watcher stuck on an outage, or
    hung, is restarted by Kubernetes, while a refused request stops it (exit 2) anyway.
    """

    def __init__(self, watcher: Watcher, port: int, stale_seconds: float) -> None:
        self.watcher, self.stale_seconds, self.started = watcher, stale_seconds, time.monotonic()
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                alive, age = health.alive()
                code = 200 if self.path == "/healthz" and alive else 404 if self.path != "/healthz" else 503
                body = json.dumps({"alive": alive, "seconds_since_last_poll": round(age, 1)}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not logged
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # all interfaces: the kubelet probes the pod IP
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alive(self) -> tuple[bool, float]:
        """(alive, seconds since the last good poll, or since start before the first one)."""
        last = self.watcher.healthy_at or self.started
        age = time.monotonic() - last
        return age <= self.stale_seconds, age

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _champion(args: argparse.Namespace, parameters: dict[str, Any], config: Config) -> Guard | None:
    """The champion the guard checks snapshots against: the export root and model name the runs publish to."""
    from tunepipe.watching.guard import Guard  # pandas: only when the command runs

    if args.no_guard:
        return None
    export_root = parameters.get("export_root") or config.export.export_root
    if args.local and not export_root:
        export_root = local_export_root(args.output)  # where tunepipe run publishes
    model_name = parameters.get("model_name") or config.export.model_name
    return Guard(export_root, model_name) if export_root else None


def _launcher(args: argparse.Namespace, parameters: dict[str, Any]) -> Any:
    if args.local:
        return LocalLauncher(Path(args.output).resolve(), args.config, ["--no-cache"] if args.no_cache else [])
    return KfpLauncher(connect(args), args.name, args.experiment, parameters, args.version_id,
                       args.service_account, caching=not args.no_cache, pipeline_root=pipeline_root_from(args))


def build_watcher(args: argparse.Namespace) -> Watcher:
    """The watcher the options describe; refuses options that cannot work before anything is polled."""
    if args.poll <= 0 or args.quiet_period < 0 or args.lease <= 0:
        raise ConfigError("--poll and --lease must be more than 0 seconds, --quiet-period at least 0")
    config = load_config(args.config) if args.config else Config()
    parameters = run_parameters(args.config, args.param)
    if not (parameters.get("label") or config.data.label):
        raise ConfigError("the runs need the column to predict: set data.label in --config, or --param label=COLUMN")
    if args.local and args.param:
        raise ConfigError("--param is for runs on Kubeflow Pipelines; with --local put the values in --config")
    completeness = Completeness(None if args.quiet_period_set else args.marker, args.quiet_period)
    return Watcher(args.location.rstrip("/"), records_for(args.location, args.state, args.lease),
                   _launcher(args, parameters), completeness, _champion(args, parameters, config),
                   args.run_prefix, watcher_identity(args.id), args.lease)


def command_watch(args: argparse.Namespace) -> int:
    """Polls until interrupted (SIGTERM, Ctrl-C) or, with --once, polls once."""
    args.quiet_period_set = args.quiet_period is not None
    args.quiet_period = DEFAULT_QUIET_SECONDS if args.quiet_period is None else args.quiet_period
    watcher = build_watcher(args)
    watcher.say = lambda line: print(line, flush=True)
    how = (f"quiet period {args.quiet_period:g} s" if args.quiet_period_set else f"marker {args.marker}")
    print(f"watch: {watcher.location}: snapshots complete by {how}; records in {watcher.records.where}; "
          f"{'local runs under ' + args.output if args.local else 'runs submitted to Kubeflow Pipelines'}; "
          f"champion guard {'off' if watcher.guard is None else watcher.guard.export_root}; polling every "
          f"{args.poll:g} s", flush=True)
    if args.skip_existing:
        for outcome in watcher.skip_existing():
            watcher.say(outcome.line())
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # Kubernetes stops pods with SIGTERM
    health = Health(watcher, args.health_port, 3 * args.poll + 120) if args.health_port is not None else None
    try:
        watcher.run(args.poll, stop, polls=1 if args.once else None)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if health is not None:
            health.close()
    return 0


def add_watch_command(commands: Any) -> dict[str, Any]:
    """Registers ``tunepipe watch`` (with ``submit``'s connection and run options); returns {command: handler}."""
    watch = commands.add_parser("watch", parents=[connection_options()],
                                help="start one run per new complete data snapshot (see docs/watch.md)")
    watch.add_argument("location", help="folder, gs:// or s3:// prefix whose sub-folders are the snapshots")
    run_options(watch)
    done = watch.add_mutually_exclusive_group()
    done.add_argument("--marker", default=DEFAULT_MARKER,
                      help=f"a snapshot is complete when this file is in it (default: {DEFAULT_MARKER})")
    done.add_argument("--quiet-period", type=float, metavar="SECONDS",
                      help=f"for writers without a marker: complete when its listing is unchanged this long "
                           f"(e.g. {DEFAULT_QUIET_SECONDS:g})")
    watch.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS,
                       help=f"seconds between listings (default: {DEFAULT_POLL_SECONDS:g})")
    watch.add_argument("--once", action="store_true", help="poll once and exit (for cron jobs and tests)")
    watch.add_argument("--skip-existing", action="store_true",
                       help="snapshots complete when the watcher starts never run; only later ones do")
    watch.add_argument("--state", help="where the records live (default: <location>/_tunepipe_watch)")
    watch.add_argument("--lease", type=float, default=DEFAULT_LEASE_SECONDS,
                       help=f"seconds before another watcher takes over a claim left without a run, on gs:// and "
                            f"s3:// (default: {DEFAULT_LEASE_SECONDS:g})")
    watch.add_argument("--id", help="this watcher's name in the records (default: the host name)")
    watch.add_argument("--run-prefix", default="tunepipe-watch", help="first part of each run's name "
                                                                     "(default: tunepipe-watch)")
    watch.add_argument("--no-guard", action="store_true",
                       help="do not check snapshots against the champion's schema")
    watch.add_argument("--health-port", type=int, help="serve GET /healthz on this port (the Deployment's "
                                                       "liveness probe; default: off)")
    watch.add_argument("--no-cache", action="store_true", help="runs recompute every step")
    watch.add_argument("--local", action="store_true", help="run each snapshot here with tunepipe run")
    watch.add_argument("--output", default="runs", help="with --local: tunepipe run's --output (default: runs)")
    return {"watch": command_watch}
