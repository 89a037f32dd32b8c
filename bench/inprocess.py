"""The pipeline's steps called in one process, without KFP: the baseline of the overhead benchmark
and the runner of the model-quality benchmark.

It calls the same core step functions the components call (the ``tunepipe.*_step`` modules), with the same
arguments the pipeline passes them (``pipeline_arguments(config)``), in the same order, with
folders where the components get artifacts. What it leaves out is exactly what KFP adds: a
process per step, artifact bookkeeping, executor input/output files and the cache.

    .venv/bin/python bench/inprocess.py [config.yaml] [--work DIR] [--skip-export]
    .venv/bin/python bench/inprocess.py [config.yaml] --work DIR --step STEP

prints one JSON line: per-step seconds and the test metrics (or the one step's seconds). ``--step``
runs one step in this process on a work folder where the steps before it ran: how bench/scale.py
puts each step in a process of its own, under a memory cap.
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


STEPS = ("validate", "fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export")
FINGERPRINT_FILE = "fingerprint.txt"  # in the work folder: what a step run on its own reads back


def _step_calls(config: Config, work: Path) -> dict[str, Callable[[], Any]]:
    """Each step after validate as a call on ``work``'s folders (``<work>/<step>/<output>``).

    The fingerprint step writes its value to :data:`FINGERPRINT_FILE`, which ingest and tune read,
    so that any step can run in a process of its own (``--step``). Each call imports its step's
    module when it runs, so a process running ingest alone never loads TensorFlow (as the
    ingest component does not).
    """
    out = lambda *parts: str(work.joinpath(*parts))  # noqa: E731
    fingerprint = lambda: (work / FINGERPRINT_FILE).read_text()  # noqa: E731
    splits = {name: out("preprocess", name) for name in ("train", "validation", "test")}

    def fingerprint_data() -> None:
        from tunepipe.fingerprint_step import fingerprint_step

        work.mkdir(parents=True, exist_ok=True)
        (work / FINGERPRINT_FILE).write_text(fingerprint_step(config.data.uri or "", config.data))

    def ingest() -> Any:
        from tunepipe.ingest_step import ingest_step

        return ingest_step(config.data.uri or "", config.data.label or "", config.data.task, config.data,
                           config.cleaning, config.images, out("ingest", "cleaned_data"),
                           out("ingest", "data_report.html"), fingerprint())

    def preprocess() -> Any:
        from tunepipe.preprocess_step import preprocess_step

        return preprocess_step(out("ingest", "cleaned_data"), config.split, config.seed,
                               {**splits, "spec": out("preprocess", "spec")}, config.preprocessing,
                               config.augmentation)

    def tune() -> Any:
        from tunepipe.tune_step import tune_step

        return tune_step(splits["train"], splits["validation"], out("preprocess", "spec"), config.search_space,
                         config.tuning, config.seed, out("tune", "best"), out("tune", "trials"),
                         out("tune", "report.html"), model_name=config.export.model_name, fingerprint=fingerprint(),
                         gpus=0)

    def train() -> Any:
        from tunepipe.train_step import train_step

        return train_step(splits["train"], splits["validation"], out("preprocess", "spec"), out("tune", "best"),
                          config.search_space, config.training, config.seed, out("train", "model"),
                          out("train", "history"), tuner_root=config.tuning.tuner_root or "",
                          model_name=config.export.model_name, cross_validation=config.evaluation)

    def evaluate() -> Any:
        from tunepipe.evaluate_step import EvaluateInputs, EvaluateOutputs, evaluate_step

        inputs = EvaluateInputs(out("train", "model"), splits["test"], out("preprocess", "spec"),
                                out("train", "history"))
        outputs = EvaluateOutputs(out("evaluate", "evaluation"), out("evaluate", "blessing"),
                                  out("evaluate", "report.html"))
        return evaluate_step(inputs, outputs, config.evaluation, config.export.export_root or "",
                             config.export.model_name, config.seed)

    def export() -> Any:
        from tunepipe.export_step import ExportInputs, export_step

        published = ExportInputs(out("train", "model"), out("preprocess", "spec"), splits["test"],
                                 out("evaluate", "evaluation"), out("evaluate", "blessing"), out("tune", "best"),
                                 out("train", "history"), out("ingest", "cleaned_data"))
        return export_step(published, config.export.export_root or "", config.export.model_name,
                           out("export", "outcome"), {"id": "in-process", "name": "in-process"},
                           out("evaluate", "report.html"))

    return {"fingerprint": fingerprint_data, "ingest": ingest, "preprocess": preprocess, "tune": tune,
            "train": train, "evaluate": evaluate, "export": export}


def run_in_process(arguments: dict[str, Any], work: Path, export: bool = True) -> InProcessRun:
    """Runs validate, fingerprint, ingest, preprocess, tune, train, evaluate and (if blessed) export.

    Args:
        arguments: The pipeline's parameters, as ``pipeline_arguments(config)`` gives them.
        work: An empty folder for the step outputs.
        export: Publish a blessed model (to ``arguments["export_root"]``, or into ``work`` when empty).
    """
    run = InProcessRun(work=work)
    config = _timed(run, "validate", lambda: validate_arguments(arguments))  # the pipeline's first step
    calls = _step_calls(config, work)
    for step in ("fingerprint", "ingest", "preprocess", "tune", "train"):
        _timed(run, step, calls[step])
    scored, decision = _timed(run, "evaluate", calls["evaluate"])
    run.metrics, run.blessed = dict(scored.metrics), decision.blessed
    if export and decision.publish:
        _timed(run, "export", calls["export"])
    return run


def run_step(arguments: dict[str, Any], work: Path, step: str) -> float:
    """Runs one step on ``work`` (the steps before it must have run there); returns its seconds."""
    run = InProcessRun(work=work)
    _timed(run, step, _step_calls(validate_arguments(arguments), work)[step])
    return run.seconds[step]


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
    parser.add_argument("--step", choices=STEPS[1:], help="run this one step on --work (earlier steps ran there)")
    args = parser.parse_args(argv)
    arguments = default_arguments(load_config(args.config))
    if args.step:
        if not args.work:
            parser.error("--step needs --work, the folder the earlier steps wrote")
        arguments["export_root"] = arguments.get("export_root") or str(args.work / "models")
        print(json.dumps({"step": args.step, "seconds": run_step(arguments, args.work, args.step)}))
        return 0
    with tempfile.TemporaryDirectory(prefix="tunepipe-inprocess-") as scratch:
        work = args.work or Path(scratch)
        if not arguments.get("export_root"):
            arguments["export_root"] = str(work / "models")
        run = run_in_process(arguments, work, export=not args.skip_export)
    print(json.dumps({"seconds": run.seconds, "metrics": run.metrics, "blessed": run.blessed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
