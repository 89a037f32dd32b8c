"""The ``tunepipe`` command line: run the pipeline locally, or compile it for Kubeflow.

    tunepipe run                       # whole pipeline on the shipped penguins dataset
    tunepipe run --data FILE --label COLUMN [--task ...] [--config FILE] [--output DIR]
    tunepipe compile -o pipeline.yaml [--image IMAGE]

Expected failures (bad data, bad configuration) print one ``error:`` line and exit 2; a
failed pipeline step exits 1 after kfp.local has shown the step's log.
"""

import argparse
import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.config import Config, load_config, pipeline_arguments
from tunepipe.errors import TunepipeError

SAMPLE_DATASET = "penguins.csv"
SAMPLE_LABEL = "species"
SAMPLE_MODEL_NAME = "penguins"


def sample_dataset() -> str:
    """Path of the shipped Palmer penguins CSV (see src/tunepipe/datasets/README.md)."""
    return str(files("tunepipe") / "datasets" / SAMPLE_DATASET)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunepipe", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline locally through kfp.local")
    run.add_argument("--data", help="CSV or Parquet file (default: the shipped penguins dataset)")
    run.add_argument("--label", help="column to predict (required with --data unless the config names it)")
    run.add_argument("--task", choices=["auto", "classification", "regression"], help="default: auto")
    run.add_argument("--config", help="YAML configuration file (see configs/default.yaml)")
    run.add_argument("--output", default="runs", help="folder for run outputs and models (default: runs)")
    run.add_argument("--no-cache", action="store_true", help="re-run every step instead of using the cache")
    compile_ = commands.add_parser("compile", help="write the pipeline as KFP IR YAML")
    compile_.add_argument("-o", "--output", default="pipeline.yaml", help="YAML file (default: pipeline.yaml)")
    compile_.add_argument("--image", help="project image for every step (default: tunepipe:<version>)")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    """The configuration file plus command-line options; the shipped dataset if none is named."""
    output = Path(args.output)
    overrides: dict[str, Any] = {"data": {"uri": args.data, "label": args.label, "task": args.task}}
    config = load_config(args.config, overrides)
    if config.data.uri is None:
        overrides["data"] = {"uri": sample_dataset(), "label": args.label or SAMPLE_LABEL, "task": args.task}
        if config.export.model_name == Config().export.model_name:
            overrides["export"] = {"model_name": SAMPLE_MODEL_NAME}
        config = load_config(args.config, overrides)
    if config.export.export_root is None:
        overrides["export"] = {**overrides.get("export", {}), "export_root": str((output / "models").resolve())}
        config = load_config(args.config, overrides)
    return config


def _format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def command_run(args: argparse.Namespace) -> int:
    from pipelines.local_run import run_pipeline
    from tunepipe.hyperband import hyperband_budget
    from tunepipe.ingest import fingerprint

    config = resolve_config(args)
    assert config.data.uri is not None  # resolve_config always names a dataset
    arguments = pipeline_arguments(config)
    arguments["data_uri"] = str(Path(config.data.uri).resolve())
    arguments["data_fingerprint"] = fingerprint(config.data.uri)
    budget = hyperband_budget(
        config.tuning.max_epochs, config.tuning.factor, config.tuning.hyperband_iterations
    )
    print(f"tunepipe: {config.data.uri} -> predict {config.data.label!r} ({config.data.task})")
    print(
        f"tunepipe: Hyperband max_epochs={config.tuning.max_epochs} factor={config.tuning.factor} "
        f"schedules {budget.trials} trials and {budget.epochs} epochs (before early stopping)"
    )
    run = run_pipeline(arguments, Path(args.output), cache=not args.no_cache)
    print_summary(run)
    return 0


def print_summary(run: Any) -> None:
    """The final summary: cache use, test metrics, hyperparameters and where outputs are."""
    card = run.card
    steps = 6
    cached = run.cached_tasks
    if len(cached) == steps:
        cache_line = f"all {steps} steps served from the cache: nothing was recomputed"
    elif cached:
        cache_line = f"{len(cached)} of {steps} steps served from the cache ({', '.join(cached)})"
    else:
        cache_line = "no step served from the cache"
    hyperparameters = "  ".join(f"{name}={value}" for name, value in card["hyperparameters"].items())
    print()
    print(f"tunepipe run finished in {run.seconds:.1f} s; {cache_line}")
    print(f"  task:                 {card['task']} of {card['label']!r} ({card['data']['rows']} rows after cleaning)")
    print(f"  test metrics:         {_format_metrics(card['metrics'])}")
    print(f"  best hyperparameters: {hyperparameters}")
    epochs, best = card[artifacts.META_EPOCHS], card[artifacts.META_BEST_EPOCH]
    print(f"  epochs trained:       {epochs} (best {best})")
    print(f"  exported model:       {card[artifacts.META_EXPORT_PATH]} (version {card[artifacts.META_VERSION]})")
    print(f"  run outputs:          {run.pipeline_root}")


def command_compile(args: argparse.Namespace) -> int:
    from kfp import compiler

    from pipelines.pipeline import create_pipeline

    compiler.Compiler().compile(create_pipeline(args.image), args.output)
    print(f"tunepipe: wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tunepipe`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # steps inherit it: no oneDNN/CUDA notices
    handlers = {"run": command_run, "compile": command_compile}
    try:
        return handlers[args.command](args)
    except TunepipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # kfp.local: a step failed after printing its log
        print(f"error: the pipeline failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
