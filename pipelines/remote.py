"""The ``tunepipe`` commands that talk to Kubeflow Pipelines on a cluster.

    tunepipe upload   [--name tunepipe] [--package FILE | --image IMAGE [--gpu-image IMAGE]] [--pipeline-root URI]
    tunepipe submit   [--name tunepipe] [--version-id ID] [--experiment tunepipe] [--config FILE]
                      [--param KEY=VALUE ...] [--pipeline-root URI] [--no-cache] [--wait [--timeout S] [--poll S]]
    tunepipe schedule create --cron "0 0 3 * * *" | --interval SECONDS [--latest] [--pipeline-root URI] [...]
    tunepipe schedule list | delete ID
    tunepipe runs     [--experiment NAME] [--limit 20]

Every command takes kfp.Client's connection options (``--host``, ``--namespace``,
``--existing-token``, ``--ssl-ca-cert``). Without ``--host``, kfp.Client uses
``$KF_PIPELINES_ENDPOINT``, then the in-cluster service, then the kube config's API-server proxy.
Credentials are used for the one command and never written anywhere.

:func:`add_remote_commands` registers the commands on the CLI's subparsers. Expected failures
raise :class:`ClusterError`, which the CLI prints as one ``error:`` line (exit 2). kfp is
imported only when one of these commands runs, so the rest of the CLI starts without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ClusterError
from pipelines.pipeline_root import add_pipeline_root_option, pipeline_root_from
from pipelines.placement import add_placement_options, image_reference, placement_from
from pipelines.resources import resources_from
from tunepipe.identity import PIPELINE_NAME

if TYPE_CHECKING:
    from pipelines.remote_kfp import Cluster

DEFAULT_PIPELINE = DEFAULT_EXPERIMENT = PIPELINE_NAME
Handler = Callable[[argparse.Namespace], int]


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as (key, value); the value is parsed as JSON when it parses, else kept as text."""
    key, separator, raw = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def run_parameters(config: str | None, params: Sequence[tuple[str, Any]] | None) -> dict[str, Any]:
    """Pipeline parameters: every value of the configuration file (if given), then each ``--param``.

    ``--param training.patience=5`` sets one key of a section's object (the rest of the section
    comes from the file, or else keeps its defaults); ``--param training={...}`` replaces the
    object. A field that is a named parameter of its own (``deploy.enabled`` is ``deploy_enabled``)
    goes there. Keys the configuration does not know are passed through: the server checks them
    against the uploaded pipeline, and the step that reads a section refuses an unknown key.
    """
    from tunepipe.config import load_config, pipeline_arguments
    from tunepipe.config.parameters import UI_PARAMETERS

    named = {f"{owner}.{field}": parameter for parameter, (owner, field) in UI_PARAMETERS.items() if owner}
    arguments = pipeline_arguments(load_config(config)) if config else {}
    for key, value in params or []:
        section, dot, field = key.partition(".")
        if key in named:
            arguments[named[key]] = value
        elif dot:
            existing = arguments.get(section)
            arguments[section] = {**(existing if isinstance(existing, dict) else {}), field: value}
        else:
            arguments[key] = value
    return arguments


def print_table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> None:
    """Plain text columns separated by two spaces, after a header line unless ``headers`` is None."""
    cells = [[str(cell) for cell in row] for row in ([headers] if headers else []) + list(rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def connect(args: argparse.Namespace) -> Cluster:
    """The cluster named by the connection options (``--host``, ``--namespace``, ...); kfp imported here."""
    from pipelines.remote_kfp import Cluster

    return Cluster(args.host, args.namespace, args.existing_token, args.ssl_ca_cert)


# -- commands ------------------------------------------------------------------------------


def command_upload(args: argparse.Namespace) -> int:
    """Compiles (unless --package) and uploads the pipeline, or a new version of it."""
    from pipelines.pipeline import compile_pipeline_file
    from tunepipe import __version__

    compile_only = (args.gpu_image, args.gpu_node_selector, args.no_gpu, args.no_security_context, args.cpu,
                    args.memory, args.pipeline_root)
    if args.package and any(compile_only):
        raise ClusterError("--gpu-image, --gpu-node-selector, --no-gpu, --no-security-context, --cpu, --memory and "
                           "--pipeline-root are compile options; not with --package (give --pipeline-root to "
                           "submit or schedule create instead)")
    if args.package and not Path(args.package).is_file():
        raise ClusterError(f"pipeline package {args.package} does not exist")
    pipeline_root = pipeline_root_from(args)
    cluster = connect(args)
    version_name = args.version_name or f"{__version__}-{_utc_stamp()}"
    with tempfile.TemporaryDirectory(prefix="tunepipe-") as folder:
        package = Path(args.package) if args.package else compile_pipeline_file(
            Path(folder) / "pipeline.yaml", args.image, args.gpu_image, placement_from(args),
            not args.no_security_context, resources_from(args), pipeline_root,
        )
        version, created = cluster.upload(package, args.name, version_name, args.description)
    if created:
        print(f"tunepipe: uploaded new pipeline {args.name!r}")
        if args.version_name:
            print("tunepipe: note: Kubeflow Pipelines names the first version of a new pipeline after the pipeline")
    else:
        print(f"tunepipe: uploaded version {version.display_name!r} of pipeline {args.name!r}")
    rows = [("pipeline id", version.pipeline_id), ("version id", version.pipeline_version_id),
            ("version name", version.display_name)]
    url = cluster.ui_url(f"pipelines/details/{version.pipeline_id}/version/{version.pipeline_version_id}")
    print_table(None, [*rows, *([("url", url)] if url else [])])
    return 0


def _run_target(args: argparse.Namespace) -> tuple[Any, dict[str, Any], str, str, str]:
    """What a run or schedule needs: client, parameters, pipeline, version (latest unless given), experiment."""
    parameters = run_parameters(args.config, args.param)
    cluster = connect(args)
    pipeline_id = cluster.require_pipeline_id(args.name)
    version_id = args.version_id or cluster.latest_version(pipeline_id).pipeline_version_id
    experiment_id = cluster.experiment_id(args.experiment, create=True)
    return cluster, parameters, pipeline_id, version_id, experiment_id


def _schedule_version(args: argparse.Namespace, pinned: str) -> tuple[str | None, str]:
    """The version id a schedule sends (None with --latest: the backend picks the newest at each run) and its row."""
    if args.latest:
        return None, f"the newest at each run (--latest; {pinned} today)"
    return pinned, f"{pinned} (pinned; re-create the schedule, or use --latest, to follow newer ones)"


def command_submit(args: argparse.Namespace) -> int:
    """Starts a run of the latest (or given) version; with --wait, follows it to the end."""
    if args.poll <= 0:
        raise ClusterError(f"--poll must be more than 0 seconds, got {args.poll:g}")
    pipeline_root = pipeline_root_from(args)  # checked before anything is asked of the server
    cluster, parameters, pipeline_id, version_id, experiment_id = _run_target(args)
    run_name = args.run_name or f"{args.name}-{_utc_stamp()}"
    run = cluster.submit(
        experiment_id, run_name, pipeline_id, version_id, parameters, args.service_account, caching=not args.no_cache,
        pipeline_root=pipeline_root,
    )
    rows = [("run id", run.run_id), ("run name", run_name), ("pipeline version", version_id),
            ("experiment", f"{args.experiment} ({experiment_id})"),
            ("caching", "off for every task (spec submitted inline)" if args.no_cache else "as compiled")]
    url = cluster.ui_url(f"runs/details/{run.run_id}")
    print_table(None, [*rows, *([("url", url)] if url else [])])
    if not args.wait:
        return 0
    succeeded, reason = cluster.wait(run.run_id, args.timeout, args.poll, lambda line: print(line, flush=True))
    if not succeeded:
        print(f"tunepipe: {reason}", file=sys.stderr)
        return 1
    return 0


def command_schedule(args: argparse.Namespace) -> int:
    """Dispatches ``schedule create|list|delete``."""
    handlers: dict[str, Handler] = {
        "create": _schedule_create, "list": _schedule_list, "delete": _schedule_delete,
    }
    return handlers[args.schedule_command](args)


def _schedule_create(args: argparse.Namespace) -> int:
    if args.cron is not None and len(args.cron.split()) == 5:
        raise ClusterError(
            f"cron {args.cron!r} has 5 fields; Kubeflow Pipelines' cron has 6, seconds first "
            f"(e.g. '0 {args.cron}')"
        )
    if args.interval is not None and args.interval < 1:
        raise ClusterError(f"--interval must be at least 1 second, got {args.interval}")
    if args.max_concurrency < 1:
        raise ClusterError(f"--max-concurrency must be at least 1, got {args.max_concurrency}")
    pipeline_root = pipeline_root_from(args)
    cluster, parameters, pipeline_id, newest, experiment_id = _run_target(args)
    version_id, version_row = _schedule_version(args, newest)
    trigger = f"cron {args.cron}" if args.cron is not None else f"every {args.interval} s"
    name = args.schedule_name or f"{args.name} {trigger}"
    recurring = cluster.schedule(
        experiment_id, name, pipeline_id, version_id, cron=args.cron, interval=args.interval,
        max_concurrency=args.max_concurrency, catchup=args.catchup, parameters=parameters,
        service_account=args.service_account, pipeline_root=pipeline_root,
    )
    print_table(None, [
        ("recurring run id", recurring.recurring_run_id), ("name", name), ("trigger", trigger),
        ("pipeline version", version_row),
        ("max concurrency", args.max_concurrency), ("catch-up", "on" if args.catchup else "off"),
    ])
    return 0


def _schedule_list(args: argparse.Namespace) -> int:
    from pipelines.remote_kfp import format_time, format_trigger

    cluster = connect(args)
    experiment_id = cluster.experiment_id(args.experiment) if args.experiment else None
    schedules = cluster.schedules(experiment_id)
    if not schedules:
        print("tunepipe: no recurring runs")
        return 0
    rows = [(item.recurring_run_id, item.display_name, item.status or item.mode or "-",
             format_trigger(item.trigger), format_time(item.created_at)) for item in schedules]
    print_table(("ID", "NAME", "STATUS", "TRIGGER", "CREATED"), rows)
    return 0


def _schedule_delete(args: argparse.Namespace) -> int:
    connect(args).delete_schedule(args.id)
    print(f"tunepipe: deleted recurring run {args.id}")
    return 0


def command_runs(args: argparse.Namespace) -> int:
    """Lists recent runs, newest first."""
    from pipelines.remote_kfp import format_time

    if args.limit < 1:
        raise ClusterError(f"--limit must be at least 1, got {args.limit}")
    cluster = connect(args)
    experiment_id = cluster.experiment_id(args.experiment) if args.experiment else None
    runs = cluster.runs(experiment_id, args.limit)
    if not runs:
        print("tunepipe: no runs")
        return 0
    rows = [(run.run_id, run.display_name, run.state or "-", format_time(run.created_at),
             format_time(run.finished_at)) for run in runs]
    print_table(("ID", "NAME", "STATE", "CREATED", "FINISHED"), rows)
    return 0


# -- argument parsing ------------------------------------------------------------------------


def connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("Kubeflow Pipelines connection (kfp.Client options; nothing is stored)")
    group.add_argument(
        "--host", default=None,
        help="API endpoint, e.g. http://localhost:8080 (default: $KF_PIPELINES_ENDPOINT, else what "
        "kfp.Client finds: the in-cluster service or the kube config's API-server proxy)",
    )
    group.add_argument("--namespace", help="Kubernetes namespace of a multi-user deployment")
    group.add_argument("--existing-token", help="bearer token sent with each request (used, never stored)")
    group.add_argument("--ssl-ca-cert", help="CA bundle that verifies the endpoint's TLS certificate")
    return parent


def run_options(parser: argparse.ArgumentParser) -> Any:
    """Options shared by submit and schedule create; returns the group ``--version-id`` is in."""
    parser.add_argument("--name", default=DEFAULT_PIPELINE, help=f"pipeline name (default: {DEFAULT_PIPELINE})")
    versions = parser.add_mutually_exclusive_group()
    versions.add_argument("--version-id", help="pipeline version to run (default: the latest)")
    parser.add_argument(
        "--experiment", default=DEFAULT_EXPERIMENT, help=f"created if missing (default: {DEFAULT_EXPERIMENT})"
    )
    parser.add_argument("--config", help="YAML configuration file whose values become the run's parameters")
    parser.add_argument(
        "--param", action="append", type=parse_param, metavar="KEY=VALUE",
        help="pipeline parameter, wins over --config; VALUE is JSON if it parses, else text (repeatable)",
    )
    parser.add_argument("--service-account", help="Kubernetes service account of the run's pods")
    add_pipeline_root_option(parser, "wins over the root compiled into the pipeline")
    return versions


def add_remote_commands(commands: argparse._SubParsersAction) -> dict[str, Handler]:
    """Registers upload, submit, schedule and runs on the CLI's subparsers; returns {command: handler}."""
    connection = connection_options()

    upload = commands.add_parser(
        "upload", parents=[connection], help="compile and upload the pipeline (a new version if it exists)"
    )
    upload.add_argument("--name", default=DEFAULT_PIPELINE, help=f"pipeline name (default: {DEFAULT_PIPELINE})")
    source = upload.add_mutually_exclusive_group()
    source.add_argument("--package", help="upload this compiled pipeline YAML instead of compiling")
    source.add_argument(
        "--image", type=image_reference,
        help="project image of the steps, best pinned as REPO@sha256:<digest> (default: tunepipe:<version>)",
    )
    add_placement_options(upload)
    add_pipeline_root_option(upload, "the uploaded spec's default, a run may name another")
    upload.add_argument("--version-name", help="name of the new version (default: <package version>-<UTC time>)")
    upload.add_argument("--description", help="description of the pipeline, or of the new version")

    submit = commands.add_parser("submit", parents=[connection], help="start a run of the uploaded pipeline")
    run_options(submit)
    submit.add_argument("--run-name", help="default: <name>-<UTC time>")
    submit.add_argument(
        "--no-cache", action="store_true",
        help="turn caching off for every task (submits the version's spec inline: the run is not linked to it)",
    )
    submit.add_argument("--wait", action="store_true", help="follow the run; exit 0 only if it succeeds")
    submit.add_argument("--timeout", type=float, help="with --wait: give up after SECONDS (default: no limit)")
    submit.add_argument("--poll", type=float, default=5.0, help="with --wait: seconds between polls (default: 5)")

    schedule = commands.add_parser("schedule", help="create, list or delete recurring runs")
    actions = schedule.add_subparsers(dest="schedule_command", required=True)
    create = actions.add_parser(
        "create", parents=[connection], help="run the latest pipeline version on a schedule"
    )
    run_options(create).add_argument(
        "--latest", action="store_true",
        help="each run uses the version that is newest when it starts, not the one newest now (KFP backends "
             "with kubeflow/pipelines#11560, merged January 2025; see docs/commands.md)",
    )
    trigger = create.add_mutually_exclusive_group(required=True)
    trigger.add_argument("--cron", help="6-field cron, seconds first, e.g. '0 0 3 * * *' (03:00 every day)")
    trigger.add_argument("--interval", type=int, metavar="SECONDS", help="run every SECONDS")
    create.add_argument("--schedule-name", help="default: '<name> <trigger>'")
    create.add_argument("--max-concurrency", type=int, default=1, help="runs at once at most (default: 1)")
    create.add_argument(
        "--catchup", action="store_true", help="backfill intervals missed while paused (default: off)"
    )
    listing = actions.add_parser("list", parents=[connection], help="list recurring runs")
    listing.add_argument("--experiment", help="only this experiment's (default: all)")
    delete = actions.add_parser("delete", parents=[connection], help="delete a recurring run")
    delete.add_argument("id", help="recurring run id (see schedule list)")

    runs = commands.add_parser("runs", parents=[connection], help="list recent runs, newest first")
    runs.add_argument("--experiment", help="only this experiment's runs (default: all)")
    runs.add_argument("--limit", type=int, default=20, help="most runs shown (default: 20)")

    return {"upload": command_upload, "submit": command_submit, "schedule": command_schedule, "runs": command_runs}
