"""CPU and memory requests and limits of every task on a cluster, chosen at compile time.

The defaults derive from each step's measured peak memory (``docs/benchmarks.md``: the larger of
the default run's and the 1,000,000-row run's peak RSS), by one rule:

* memory request = the measured peak, rounded up to a multiple of 128 MiB (at least 128 MiB);
* memory limit = twice the measured peak, rounded up to a multiple of 128 MiB (at least 256 MiB,
  room for the interpreter and kfp's executor, about 90 MiB on their own);
* CPU: steps that run Keras or pandas request 1 CPU, limit 2 (the bench machine's 2 cores, on
  which the times were measured); the light steps (validate, fingerprint, deploy, record refusal:
  one Python thread) request 500m, limit 1.

``deploy``, ``record-refusal`` and ``validate`` are not in the benchmarks: their figure is the peak
RSS of a process importing kfp's executor, the step and (deploy) the kubernetes client, 90 MiB
(validate: the component run on the default parameters in such a process, as the step reports it).
``--cpu`` and ``--memory`` override any step at compile time.
"""

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tunepipe.errors import ConfigError

# Peak RSS per step in MiB (docs/benchmarks.md, "Orchestration overhead" and "Training throughput").
MEASURED_PEAK_MIB = {
    "fingerprint": 45, "ingest": 884, "preprocess": 711, "tune": 1156, "train": 1153,
    "evaluate": 1235, "export": 991, "deploy": 90, "record-refusal": 90, "validate": 90,
}
LIGHT_STEPS = frozenset({"validate", "fingerprint", "deploy", "record-refusal"})
ROUND_MIB = 128
MIN_REQUEST_MIB, MIN_LIMIT_MIB = 128, 256
# What Kubernetes (and kfp's setters) accept: a number of CPUs or millicores; bytes with a unit.
CPU_QUANTITY = re.compile(r"([0-9]*[.])?[0-9]+m?$")
MEMORY_QUANTITY = re.compile(r"[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")
UNITS = {"": 1, "m": 1e-3, "K": 1e3, "Ki": 2**10, "M": 1e6, "Mi": 2**20, "G": 1e9, "Gi": 2**30,
         "T": 1e12, "Ti": 2**40, "P": 1e15, "Pi": 2**50, "E": 1e18, "Ei": 2**60}


@dataclass(frozen=True)
class StepResources:
    """Kubernetes quantities of one task's container, e.g. ``cpu_request="1"``, ``memory_limit="2432Mi"``."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


def _round_up(mib: float, floor: int) -> str:
    return f"{max(floor, math.ceil(mib / ROUND_MIB) * ROUND_MIB)}Mi"


def derived(step: str, peak_mib: float) -> StepResources:
    """The module docstring's rule applied to ``step`` with measured peak ``peak_mib``."""
    cpu_request, cpu_limit = ("500m", "1") if step in LIGHT_STEPS else ("1", "2")
    return StepResources(cpu_request, cpu_limit, _round_up(peak_mib, MIN_REQUEST_MIB),
                         _round_up(2 * peak_mib, MIN_LIMIT_MIB))


DEFAULT_RESOURCES: Mapping[str, StepResources] = {
    step: derived(step, peak) for step, peak in MEASURED_PEAK_MIB.items()
}


def parse_override(text: str, pattern: re.Pattern[str], option: str) -> tuple[str, str, str]:
    """``STEP=REQUEST:LIMIT`` as ``(step, request, limit)``; ConfigError naming the text otherwise."""
    step, _, quantities = text.partition("=")
    request, _, limit = quantities.partition(":")
    if step not in DEFAULT_RESOURCES:
        raise ConfigError(f"{option} {text!r}: unknown step {step!r}; steps: {', '.join(DEFAULT_RESOURCES)}")
    if not (pattern.match(request) and pattern.match(limit)):
        raise ConfigError(f"{option} {text!r}: expected {step}=REQUEST:LIMIT as Kubernetes quantities")
    if amount(request) > amount(limit):  # Kubernetes would refuse the pod when the run starts
        raise ConfigError(f"{option} {text!r}: the request {request} is above the limit {limit}")
    return step, request, limit


def amount(quantity: str) -> float:
    """A Kubernetes quantity as a number (CPUs or bytes): ``500m`` is 0.5, ``2Gi`` is 2**31."""
    number = re.match(r"[0-9.]+", quantity)
    assert number is not None  # checked against the quantity patterns first
    return float(number.group()) * UNITS[quantity[number.end():]]


def resources_from(args: argparse.Namespace) -> dict[str, StepResources]:
    """The defaults with the ``--cpu`` and ``--memory`` overrides applied."""
    resources = dict(DEFAULT_RESOURCES)
    for text in args.cpu or []:
        step, request, limit = parse_override(text, CPU_QUANTITY, "--cpu")
        resources[step] = replace(resources[step], cpu_request=request, cpu_limit=limit)
    for text in args.memory or []:
        step, request, limit = parse_override(text, MEMORY_QUANTITY, "--memory")
        resources[step] = replace(resources[step], memory_request=request, memory_limit=limit)
    return resources


def add_resource_options(parser: argparse.ArgumentParser) -> None:
    """``--cpu`` and ``--memory``: one step's requests and limits instead of the defaults."""
    parser.add_argument(
        "--cpu", action="append", metavar="STEP=REQUEST:LIMIT",
        help="CPU request and limit of one step, e.g. train=2:4 (repeatable; default: 1:2, "
             "500m:1 for fingerprint, deploy and record-refusal)",
    )
    parser.add_argument(
        "--memory", action="append", metavar="STEP=REQUEST:LIMIT",
        help="memory request and limit of one step, e.g. train=4Gi:8Gi (repeatable; default: measured "
             "peak / twice it, see docs/benchmarks.md)",
    )
