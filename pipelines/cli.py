"""The ``tunepipe`` command line: run the pipeline locally, or on Kubeflow Pipelines.

    tunepipe run                       # whole pipeline on the shipped penguins dataset
    tunepipe run --data FILE --label COLUMN [--task ...] [--config FILE] [--output DIR] [--runner docker] [-v]
    tunepipe compile -o pipeline.yaml [--image IMAGE] [--gpu-image IMAGE] [--gpu-node-selector K=V] [--no-gpu]
                     [--pipeline-root gs://bucket/prefix]
    tunepipe upload | submit | schedule | runs --host URL ...   # against a Kubeflow Pipelines endpoint
    tunepipe watch LOCATION [--local] ...                       # one run per new data snapshot (docs/watch.md)
    tunepipe serve --export-root DIR|gs://...|s3://... --model-name NAME [--version N] [--port 8080]

Expected failures (bad data, bad configuration) print one ``error:`` line and exit 2; a
failed pipeline step exits 1 after its last log lines, its log file and its ``error:`` line.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pipelines.errors import StepFailed
from pipelines.local_folders import local_export_root, local_tuner_root
from pipelines.pipeline_root import add_pipeline_root_option, pipeline_root_from
from pipelines.placement import add_placement_options, image_reference, placement_from
from pipelines.remote import add_remote_commands
from pipelines.resources import resources_from
from pipelines.step_logs import strip_ansi
from pipelines.watch import add_watch_command
from tunepipe import __version__, artifacts
from tunepipe.config import Config, load_config, pipeline_arguments
from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI, SAMPLE_LABELS, SAMPLE_SCHEME, resolve
from tunepipe.errors import TunepipeError
from tunepipe.identity import SERVE_VERSION_ENV
from tunepipe.reports import modelcard


def sample_dataset() -> str:
    """Path of the shipped Palmer penguins CSV (see src/tunepipe/datasets/README.md)."""
    return resolve(DEFAULT_SAMPLE_URI)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunepipe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"tunepipe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline locally through kfp.local")
    run.add_argument(
        "--data", help="local file or folder, gs://bucket/prefix, s3://bucket/prefix, or sample://penguins|digits: "
        "CSV, Parquet, JSONL or an image folder with one sub-folder per class (default: the shipped penguins dataset)",
    )
    run.add_argument("--label", help="column to predict (required with --data unless the config names it; "
                                     "shipped samples know theirs)")
    run.add_argument("--baseline-schema", help="schema.json of an earlier run (or its folder), local or gs://: "
                                               "check the data for drift against it")
    run.add_argument("--task", choices=["auto", "classification", "regression"], help="default: auto")
    run.add_argument("--config", help="YAML configuration file (see configs/default.yaml)")
    run.add_argument("--output", default="runs", help="folder for run outputs and models (default: runs)")
    run.add_argument("--no-cache", action="store_true", help="re-run every step instead of using the cache")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="also print everything kfp.local prints (default: a line per step; all of it is in "
                          "<output>/logs/<run>/<step>.log either way)")
    run.add_argument(
        "--runner", choices=["subprocess", "docker"], default="subprocess",
        help="subprocess: steps run in this environment (default); docker: in the project image",
    )
    run.add_argument(
        "--image", type=image_reference, help="project image for --runner docker (default: tunepipe:<version>)"
    )
    compile_ = commands.add_parser("compile", help="write the pipeline as KFP IR YAML")
    compile_.add_argument("-o", "--output", default="pipeline.yaml", help="YAML file (default: pipeline.yaml)")
    compile_.add_argument(
        "--image", type=image_reference,
        help="project image of the CPU steps, best pinned as REPO@sha256:<digest> (default: tunepipe:<version>)",
    )
    add_placement_options(compile_)
    add_pipeline_root_option(compile_, "the spec's default, a run may name another")
    _add_serve_command(commands)
    parser.set_defaults(remote_handlers={**add_remote_commands(commands), **add_watch_command(commands)})
    return parser


def _add_serve_command(commands: Any) -> None:
    """``tunepipe serve``; its defaults are tunepipe.serving.settings' (imported without kserve)."""
    from tunepipe.serving import settings as s

    serve = commands.add_parser("serve", help="serve the champion over HTTP with KServe's model server "
                                              "(needs tunepipe[serve]; see docs/serving.md)")
    serve.add_argument("--export-root", required=True, help="the pipeline's export root: local folder, gs:// or s3://")
    serve.add_argument("--model-name", required=True, help="model folder under it, also the served model's name "
                                                           "(POST /v1/models/<name>:predict)")
    serve.add_argument("--version", type=int, help=f"serve this version and never reload (default: ${SERVE_VERSION_ENV}"
                                                   ", else follow <model>/CHAMPION)")
    serve.add_argument("--host", default=s.DEFAULT_HOST, help=f"interface to listen on (default: {s.DEFAULT_HOST}; "
                                                               "0.0.0.0 in a container)")
    serve.add_argument("--port", type=int, default=s.DEFAULT_PORT, help=f"HTTP port (default: {s.DEFAULT_PORT})")
    serve.add_argument("--poll-seconds", type=float, default=s.DEFAULT_POLL_SECONDS,
                       help=f"how often the champion pointer is read (default: {s.DEFAULT_POLL_SECONDS:g})")
    serve.add_argument("--cache-dir", help="where versions from gs:// or s3:// are downloaded "
                                           "(default: tunepipe-serve under the system's temporary folder)")
    serve.add_argument("--max-body-bytes", type=int, default=s.DEFAULT_MAX_BODY_BYTES,
                       help=f"largest request body (default: {s.DEFAULT_MAX_BODY_BYTES})")
    serve.add_argument("--max-image-bytes", type=int, default=s.DEFAULT_MAX_IMAGE_BYTES,
                       help=f"largest encoded image (default: {s.DEFAULT_MAX_IMAGE_BYTES})")
    serve.add_argument("--max-image-pixels", type=int, default=s.DEFAULT_MAX_IMAGE_PIXELS,
                       help=f"largest image, height x width (default: {s.DEFAULT_MAX_IMAGE_PIXELS})")


def serve_settings(args: argparse.Namespace, environment: dict[str, str]) -> Any:
    """The server's settings from the options; ``--version`` falls back to ``$TUNEPIPE_SERVE_VERSION``."""
    import tempfile

    from tunepipe.errors import ConfigError
    from tunepipe.serving.settings import Limits, ServeSettings

    version = args.version
    if version is None and environment.get(SERVE_VERSION_ENV):
        try:
            version = int(environment[SERVE_VERSION_ENV])
        except ValueError:
            raise ConfigError(f"${SERVE_VERSION_ENV}: expected a version number, got "
                              f"{environment[SERVE_VERSION_ENV]!r}") from None
    for option in ("port", "poll_seconds", "max_body_bytes", "max_image_bytes", "max_image_pixels"):
        if getattr(args, option) <= 0:
            raise ConfigError(f"--{option.replace('_', '-')}: must be positive, got {getattr(args, option)}")
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.gettempdir()) / "tunepipe-serve"
    return ServeSettings(
        export_root=_typed_path(args.export_root) or args.export_root, model_name=args.model_name,
        cache_dir=cache.resolve(), version=version, host=args.host, port=args.port, poll_seconds=args.poll_seconds,
        limits=Limits(args.max_body_bytes, args.max_image_bytes, args.max_image_pixels),
    )


def command_serve(args: argparse.Namespace) -> int:
    settings = serve_settings(args, dict(os.environ))
    try:
        from tunepipe.serving.server import serve
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "kserve":
            raise
        print("error: tunepipe serve needs KServe's model server: install tunepipe[serve]", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def _typed_path(value: str | None) -> str | None:
    """A local path typed on this command line, made absolute (``..`` resolved); URIs unchanged.

    Paths a user types on their own machine are theirs to choose; the ``..`` refusal guards the
    locations that arrive in configuration files and pipeline parameters.
    """
    if value is None or "://" in value:
        return value
    return str(Path(value).resolve())


def resolve_config(args: argparse.Namespace) -> Config:
    """The configuration file plus command-line options; the shipped sample if no data is named."""
    args.data, args.config = _typed_path(args.data), _typed_path(args.config)
    args.baseline_schema = _typed_path(args.baseline_schema)
    label = args.label
    if label is None and args.data and args.data.startswith(SAMPLE_SCHEME):
        label = SAMPLE_LABELS.get(args.data.removeprefix(SAMPLE_SCHEME))
    overrides: dict[str, Any] = {
        "data": {"uri": args.data, "label": label, "task": args.task, "baseline_schema_uri": args.baseline_schema},
    }
    config = load_config(args.config, overrides)
    if config.data.uri is None:
        overrides["data"] = {**overrides["data"], "uri": DEFAULT_SAMPLE_URI, "label": label or DEFAULT_SAMPLE_LABEL}
    uri = config.data.uri or DEFAULT_SAMPLE_URI
    if uri.startswith(SAMPLE_SCHEME) and config.export.model_name == Config().export.model_name:
        # A shipped sample's model is named after it (penguins, digits).
        overrides["export"] = {"model_name": uri.removeprefix(SAMPLE_SCHEME)}
    if config.export.export_root is None:
        overrides["export"] = {**overrides.get("export", {}), "export_root": local_export_root(args.output)}
    if config.tuning.tuner_root is None:  # a re-run of the same data and space resumes the search
        overrides["tuning"] = {"tuner_root": local_tuner_root(args.output)}
    return load_config(args.config, overrides)


def _local_runner(args: argparse.Namespace, data: Path | None, arguments: dict[str, Any]) -> Any:
    """None for the subprocess runner; for docker, one that mounts the data and the output folders."""
    if args.runner == "subprocess":
        return None
    from pipelines.local_run import docker_runner, local_output_folders

    shipped = data is None or data.is_relative_to(Path(sample_dataset()).parent)  # gs:// or in the image
    mounted = [] if shipped or data is None else [data.parent if data.is_file() else data]
    return docker_runner([*mounted, *local_output_folders(arguments)])


def local_run_arguments(config: Config) -> tuple[dict[str, Any], Path | None]:
    """The pipeline parameters of a local run, with local paths made absolute, and the local data path.

    The steps run in other working directories (and containers), so local data, a local
    baseline schema and a local export root are passed as absolute paths; object-store URIs go
    as they are (credentials: the environment's default).

    Raises:
        DataError: The data or the baseline schema is missing or its location is refused,
            before anything runs.
    """
    from tunepipe.data.sources import check_uri
    from tunepipe.storage.stores import is_remote

    assert config.data.uri is not None and config.export.export_root is not None  # resolve_config sets both
    checked = check_uri(config.data.uri)
    data_path = None if is_remote(checked) else Path(checked).resolve()
    arguments = pipeline_arguments(config)
    if data_path is not None and not config.data.uri.startswith(SAMPLE_SCHEME):
        arguments["data_uri"] = str(data_path)
    baseline = config.data.baseline_schema_uri
    if baseline and not is_remote(baseline):
        arguments["data"] = {**arguments["data"], "baseline_schema_uri": str(Path(check_uri(baseline)).resolve())}
    if not is_remote(config.export.export_root):
        arguments["export_root"] = str(Path(config.export.export_root).resolve())
    return arguments, data_path


def command_run(args: argparse.Namespace) -> int:
    from pipelines.local_run import run_pipeline
    from tunepipe.modelling.hyperband import hyperband_budget

    config = resolve_config(args)
    arguments, data_path = local_run_arguments(config)
    runner = _local_runner(args, data_path, arguments)  # before anything runs: the docker extra may be missing
    budget = hyperband_budget(config.tuning.max_epochs, config.tuning.factor, config.tuning.hyperband_iterations)
    print(f"tunepipe: {config.data.uri} -> predict {config.data.label!r} ({config.data.task}); runner {args.runner}")
    print(
        f"tunepipe: Hyperband max_epochs={config.tuning.max_epochs} factor={config.tuning.factor} "
        f"schedules {budget.trials} trials and {budget.epochs} epochs (before early stopping); "
        f"placement {config.tuning.placement.where}, tuner state under {config.tuning.tuner_root}"
    )
    run = run_pipeline(
        arguments, Path(args.output), cache=not args.no_cache,
        runner=runner, image=args.image, verbose=args.verbose,
    )
    print_summary(run)
    return 0


def _format_metrics(outcome: dict[str, Any]) -> str:
    """Each test metric with its 95 % interval: ``accuracy 0.9615 [0.9038, 1.0000]``."""
    return "  ".join(" ".join(f"{cell:.4f}" if isinstance(cell, float) else str(cell) for cell in row if cell != "")
                     for row in modelcard.metric_rows(outcome))


# The cross-validated metrics worth a line in the summary (the rest are in the report).
CV_SUMMARY_METRICS = {"classification": ("accuracy", "f1", "log_loss"), "regression": ("rmse", "mae", "r2")}


def _cv_line(outcome: dict[str, Any]) -> str | None:
    cv = outcome.get(modelcard.CARD_CROSS_VALIDATION)
    if not cv:
        return None
    shown = [f"{name} {cv['metrics'][name]['mean']:.4f} ± {cv['metrics'][name]['std']:.4f}"
             for name in CV_SUMMARY_METRICS[outcome[modelcard.CARD_TASK]] if name in cv["metrics"]]
    return f"{cv['folds']} folds of {cv['rows']} rows: " + "  ".join(shown)


def _champion_line(blessing: dict[str, Any]) -> str:
    champion = blessing.get("champion")
    if not champion:
        return "none yet (thresholds alone decide)"
    if champion.get("error"):
        return f"version {champion['version']}, could not be scored: {champion['error']}"
    return (f"version {champion['version']}: {champion['metric']} {champion['champion']:.4f} on this test split "
            f"(candidate {champion['candidate']:.4f}; difference {champion['difference']:+.4f}, 95% CI "
            f"{champion['low']:+.4f} to {champion['high']:+.4f}; rule {champion['rule']}, "
            f"margin {champion['margin']:g})")


def _published_lines(outcome: dict[str, Any]) -> list[str]:
    hyperparameters = "  ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in outcome[modelcard.CARD_HYPERPARAMETERS].items()
    )
    epochs, best = outcome[artifacts.META_EPOCHS], outcome[artifacts.META_BEST_EPOCH]
    forced = "; force_export overrode the decision" if outcome[modelcard.CARD_BLESSING].get("forced") else ""
    return [
        f"  best hyperparameters: {hyperparameters}",
        f"  epochs trained:       {epochs} (best {best})",
        f"  exported model:       {outcome[artifacts.META_EXPORT_PATH]} (version {outcome[artifacts.META_VERSION]}), "
        f"now the champion{forced}",
    ]


def print_summary(run: Any) -> None:
    """The final summary: cache use, test metrics, the champion, the decision and where outputs are."""
    from pipelines.local_run import CACHEABLE_STEPS

    outcome = run.outcome
    cached = run.cached_tasks
    if len(cached) >= CACHEABLE_STEPS:
        cache_line = "data unchanged; every step served from the cache: nothing was recomputed"
    elif cached:
        cache_line = f"{len(cached)} step{'s' if len(cached) > 1 else ''} served from the cache ({', '.join(cached)})"
    else:
        cache_line = "no step served from the cache"
    blessing = outcome[modelcard.CARD_BLESSING]
    print()
    print(f"tunepipe run finished in {run.seconds:.1f} s; {cache_line}")
    if outcome[artifacts.META_PUBLISHED]:
        rows = outcome[modelcard.CARD_DATA]["rows"]
        task, label = outcome[modelcard.CARD_TASK], outcome[modelcard.CARD_LABEL]
        print(f"  task:                 {task} of {label!r} ({rows} rows after cleaning)")
    print(f"  test metrics:         {_format_metrics(outcome)} (in brackets: 95% CI)")
    cv = _cv_line(outcome)
    if cv:
        print(f"  cross-validation:     {cv}")
    unseen = outcome.get(modelcard.CARD_UNSEEN_LABELS)
    if unseen:
        values = ", ".join(f"{value!r} ({count})" for value, count in list(unseen.items())[:10])
        print(f"  unseen labels:        {sum(unseen.values())} test rows hold labels the model never learnt, "
              f"scored as errors: {values}")
    print(f"  champion:             {_champion_line(blessing)}")
    print(f"  blessing:             {'blessed' if blessing['blessed'] else 'NOT blessed'} ({blessing['reason']})")
    if outcome[artifacts.META_PUBLISHED]:
        print("\n".join(_published_lines(outcome)))
    else:
        print("  exported model:       none (not blessed; set evaluation.force_export to override)")
    if outcome.get(artifacts.META_REPORT):
        print(f"  report:               {outcome[artifacts.META_REPORT]}")
    print(f"  run outputs:          {run.pipeline_root}")
    if run.logs:
        print(f"  step logs:            {run.logs} (one file per step; run.log: kfp.local's own lines)")


def compile_pipeline(args: argparse.Namespace, output: str) -> None:
    """Compiles the pipeline for the images and placement named by the options."""
    from pipelines.pipeline import compile_pipeline_file

    compile_pipeline_file(output, args.image, args.gpu_image, placement_from(args), not args.no_security_context,
                          resources_from(args), pipeline_root_from(args))


def command_compile(args: argparse.Namespace) -> int:
    compile_pipeline(args, args.output)
    print(f"tunepipe: wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tunepipe`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # steps inherit it: no oneDNN/CUDA notices
    handlers = {"run": command_run, "compile": command_compile, "serve": command_serve, **args.remote_handlers}
    try:
        return handlers[args.command](args)
    except TunepipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StepFailed as failure:  # its last lines, its log's path and its error line, last
        sys.stdout.flush()
        print("\n".join(failure.lines), file=sys.stderr)
        return 1
    except RuntimeError as error:  # kfp.local failed outside a step
        message = str(error) if sys.stderr.isatty() else strip_ansi(str(error))
        print(f"error: the pipeline failed: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
