"""The pipeline's steps called in one process, without KFP: the baseline of the overhead benchmark
and the runner of the model-quality benchmark.

It calls the same core step functions the components call (the ``tunepipe.*_step`` modules), with the same
arguments the pipeline passes them (``pipeline_arguments(config)``), in the same order, with
folders where the components get artifacts. What it leaves out is exactly what KFP adds: a
process per step, artifact bookkeeping, executor input/output files and the cache.

    .venv/bin/python bench/inprocess.py [config.yaml] [--work DIR] [--skip-export]

prints one JSON line: per-step seconds and the test metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe.config import Config, load_config, pipeline_arguments
from tunepipe.config.parameters import validate_arguments
from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI
from tunepipe.evaluate_step import EvaluateInputs, EvaluateOutputs, evaluate_step
from tunepipe.export_step import ExportInputs, export_step
from tunepipe.fingerprint_step import fingerprint_step
from tunepipe.ingest_step import ingest_step
from tunepipe.preprocess_step import preprocess_step
from tunepipe.train_step import train_step
from tunepipe.tune_step import tune_step


@dataclass
class InProcessRun:
    """What one in-process run measured and produced.

    Attributes:
        seconds: wall seconds of each step, in pipeline order.
        metrics: the test-split metrics evaluate computed.
        blessed: evaluate's decision.
        work: the folder holding every step's outputs (``<work>/<step>/<output>``).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    blessed: bool = False
    work: Path = Path()


def _timed(run: InProcessRun, step: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    run.seconds[step] = time.perf_counter() - started
    print(f"inprocess: {step} {run.seconds[step]:.1f} s", file=sys.stderr, flush=True)
    return result


def run_in_process(arguments: dict[str, Any], work: Path, export: bool = True) -> InProcessRun:
    """Runs validate, fingerprint, ingest, preprocess, tune, train, evaluate and (if blessed) export.

    Args:
        arguments: The pipeline's parameters, as ``pipeline_arguments(config)`` gives them.
        work: An empty folder for the step outputs.
        export: Publish a blessed model (to ``arguments["export_root"]``, or into ``work`` when empty).
    """
    a, out = arguments, (lambda *parts: str(work.joinpath(*parts)))
    run = InProcessRun(work=work)
    config = _timed(run, "validate", lambda: validate_arguments(a))  # the pipeline's first step
    data_fingerprint = _timed(run, "fingerprint", lambda: fingerprint_step(config.data.uri or "", config.data))
    _timed(run, "ingest", lambda: ingest_step(
        config.data.uri or "", config.data.label or "", config.data.task, config.data, config.cleaning, config.images,
        out("ingest", "cleaned_data"), out("ingest", "data_report.html"), data_fingerprint))
    splits = {name: out("preprocess", name) for name in ("train", "validation", "test")}
    _timed(run, "preprocess", lambda: preprocess_step(
        out("ingest", "cleaned_data"), config.split, config.seed, {**splits, "spec": out("preprocess", "spec")},
        config.preprocessing, config.augmentation))
    _timed(run, "tune", lambda: tune_step(
        splits["train"], splits["validation"], out("preprocess", "spec"), config.search_space, config.tuning,
        config.seed, out("tune", "best"), out("tune", "trials"), out("tune", "report.html"),
        model_name=config.export.model_name, fingerprint=data_fingerprint, gpus=0))
    _timed(run, "train", lambda: train_step(
        splits["train"], splits["validation"], out("preprocess", "spec"), out("tune", "best"), config.search_space,
        config.training, config.seed, out("train", "model"), out("train", "history"),
        tuner_root=config.tuning.tuner_root or "", model_name=config.export.model_name,
        cross_validation=config.evaluation))
    inputs = EvaluateInputs(out("train", "model"), splits["test"], out("preprocess", "spec"), out("train", "history"))
    scored, decision = _timed(run, "evaluate", lambda: evaluate_step(
        inputs, EvaluateOutputs(out("evaluate", "evaluation"), out("evaluate", "blessing"),
                                out("evaluate", "report.html")),
        config.evaluation, config.export.export_root or "", config.export.model_name, config.seed))
    run.metrics, run.blessed = dict(scored.metrics), decision.blessed
    if export and decision.publish:
        published = ExportInputs(out("train", "model"), out("preprocess", "spec"), splits["test"],
                                 out("evaluate", "evaluation"), out("evaluate", "blessing"), out("tune", "best"),
                                 out("train", "history"), out("ingest", "cleaned_data"))
        _timed(run, "export", lambda: export_step(
            published, config.export.export_root or "", config.export.model_name, out("export", "outcome"),
            {"id": "in-process", "name": "in-process"}, out("evaluate", "report.html")))
    return run


def default_arguments(config: Config | None = None) -> dict[str, Any]:
    """The pipeline parameters of a configuration (default: ``tunepipe run``'s defaults, penguins)."""
    arguments = pipeline_arguments(config or load_config(None))
    arguments.setdefault("data_uri", DEFAULT_SAMPLE_URI)
    arguments.setdefault("label", DEFAULT_SAMPLE_LABEL)
    return arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="YAML configuration (default: tunepipe run's defaults)")
    parser.add_argument("--work", type=Path, help="folder for the step outputs (default: a temporary one)")
    parser.add_argument("--skip-export", action="store_true", help="stop after evaluate")
    args = parser.parse_args(argv)
    arguments = default_arguments(load_config(args.config))
    with tempfile.TemporaryDirectory(prefix="tunepipe-inprocess-") as scratch:
        work = args.work or Path(scratch)
        if not arguments.get("export_root"):
            arguments["export_root"] = str(work / "models")
        run = run_in_process(arguments, work, export=not args.skip_export)
    print(json.dumps({"seconds": run.seconds, "metrics": run.metrics, "blessed": run.blessed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
