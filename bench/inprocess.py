"""The pipeline's steps called in one process, without KFP: the baseline of the overhead benchmark
and the runner of the model-quality benchmark.

It walks the pipeline's own declaration (:data:`tunepipe.dag.DAG`) as the pipeline does: each step
in order, its inputs from the pipeline's parameters (``pipeline_arguments(config)``) and the earlier
steps' outputs, its sections validated as its component validates them
(:func:`tunepipe.binding.bind`), only where its branches hold, with folders
(``<work>/<step>/<output>``) where the components get artifacts. What it leaves out is exactly what
KFP adds: a process per step, artifact bookkeeping, executor input/output files and the cache.

    .venv/bin/python bench/inprocess.py [config.yaml] [--work DIR] [--skip-export]
    .venv/bin/python bench/inprocess.py [config.yaml] --work DIR --step STEP [--split-read whole|streamed]

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.binding import bind, step_module
from tunepipe.config import Config, load_config, pipeline_arguments
from tunepipe.config.parameters import pipeline_defaults
from tunepipe.contract import RETURNED, RUN_ID, RUN_NAME, Dag, Step
from tunepipe.dag import DAG
from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI

# What the run's placeholders are in one process.
IN_PROCESS = {RUN_ID: "in-process", RUN_NAME: "in-process"}
# Where a step's returned value is kept in its folder, so that a later step can run in a process of its own.
RETURNED_FILE = RETURNED + ".json"
STEPS = tuple(step.name for step in DAG.steps)
# The size threshold that forces each way of reading a split (see force_split_read).
SPLIT_READS = {"whole": 1 << 62, "streamed": -1}


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


@dataclass(frozen=True)
class Folder:
    """An artifact as a folder of the work folder: its path is its URI."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return self.path


def output_folder(work: Path, step: str, output: str) -> Path:
    """Where ``step`` writes ``output`` in ``work``; the later steps read it there."""
    return work / step / output


class Walk:
    """The declaration walked over one work folder: arguments in, each step's returned value kept."""

    def __init__(self, dag: Dag, arguments: dict[str, Any], work: Path) -> None:
        self.dag, self.work = dag, work
        self.parameters = {**pipeline_defaults(), **arguments}
        self.values: dict[str, Any] = {}

    def value(self, source: str) -> Any:
        """A source's value: a parameter, an earlier step's returned value or output folder, a placeholder."""
        if source in IN_PROCESS:
            return IN_PROCESS[source]
        step, dot, output = source.partition(".")
        if not dot:
            return self.parameters[source]
        if output != RETURNED:
            return Folder(str(output_folder(self.work, step, output)))
        if step not in self.values:  # it ran in another process (--step)
            self.values[step] = json.loads((self.work / step / RETURNED_FILE).read_text())
        return self.values[step]

    def holds(self, step: Step) -> bool:
        """Whether every branch ``step`` runs under holds."""
        return all((self.value(branch.source) is True) != branch.otherwise for branch in step.branches)

    def run(self, step: Step) -> Any:
        """Runs ``step`` on the work folder and keeps its returned value (in memory and in its folder)."""
        arguments = {item.name: self.value(item.source) for item in step.inputs}
        arguments.update({output.name: Folder(str(output_folder(self.work, step.name, output.name)))
                          for output in step.outputs})
        module = step_module(step)  # imported here, so a step that needs no TensorFlow loads none
        result = module.run(*bind(step, module, arguments))
        self.values[step.name] = result.value
        folder = self.work / step.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RETURNED_FILE).write_text(json.dumps(result.value))
        return result.value


def _timed(run: InProcessRun, step: str, call: Any) -> Any:
    started = time.perf_counter()
    result = call()
    run.seconds[step] = time.perf_counter() - started
    print(f"inprocess: {step} {run.seconds[step]:.1f} s", file=sys.stderr, flush=True)
    return result


def run_in_process(arguments: dict[str, Any], work: Path, export: bool = True, dag: Dag = DAG) -> InProcessRun:
    """Runs every step of ``dag`` whose branches hold, in order: by default validate through evaluate,
    then export (and deploy when enabled) if blessed, record_refusal if not.

    Args:
        arguments: The pipeline's parameters, as ``pipeline_arguments(config)`` gives them.
        work: An empty folder for the step outputs.
        export: Run the steps that follow evaluate's decision (default); False stops before them.
        dag: The declaration to walk (default: tunepipe's).
    """
    run, walk = InProcessRun(work=work), Walk(dag, arguments, work)
    for step in dag.steps:
        if (step.branches and not export) or not walk.holds(step):
            continue
        _timed(run, step.name, lambda step=step: walk.run(step))
    evaluated = work / "evaluate"
    if (evaluated / "evaluation").is_dir():
        run.metrics = json.loads((evaluated / "evaluation" / artifacts.EVALUATION_FILE).read_text())["metrics"]
        run.blessed = json.loads((evaluated / "blessing" / artifacts.BLESSING_FILE).read_text())["blessed"]
    return run


def run_step(arguments: dict[str, Any], work: Path, step: str, dag: Dag = DAG) -> float:
    """Runs one step on ``work`` (the steps before it must have run there); returns its seconds.

    The first step (validate, which checks the parameters) runs first, untimed, as in every run:
    its value is a later step's input.
    """
    run, walk = InProcessRun(work=work), Walk(dag, arguments, work)
    first = dag.steps[0]
    if step != first.name:
        walk.run(first)
    _timed(run, step, lambda: walk.run(dag.step(step)))
    return run.seconds[step]


def default_arguments(config: Config | None = None) -> dict[str, Any]:
    """The pipeline parameters of a configuration (default: ``tunepipe run``'s defaults, penguins)."""
    arguments = pipeline_arguments(config or load_config(None))
    arguments.setdefault("data_uri", DEFAULT_SAMPLE_URI)
    arguments.setdefault("label", DEFAULT_SAMPLE_LABEL)
    return arguments


def force_split_read(how: str) -> None:
    """Makes every split in this process read ``whole`` or ``streamed``, so that a benchmark can time
    both paths on the same data (``Split.fits_memory`` reads the threshold at each call)."""
    from tunepipe.data import split

    split.WHOLE_SPLIT_BYTES = SPLIT_READS[how]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="YAML configuration (default: tunepipe run's defaults)")
    parser.add_argument("--work", type=Path, help="folder for the step outputs (default: a temporary one)")
    parser.add_argument("--skip-export", action="store_true", help="stop after evaluate")
    parser.add_argument("--step", choices=STEPS, help="run this one step on --work (earlier steps ran there)")
    parser.add_argument("--split-read", choices=SPLIT_READS,
                        help="read every split whole or streamed whatever its size (bench only: the split's "
                             "size decides in a real run, tunepipe.data.split.WHOLE_SPLIT_BYTES)")
    args = parser.parse_args(argv)
    if args.split_read:
        force_split_read(args.split_read)
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
