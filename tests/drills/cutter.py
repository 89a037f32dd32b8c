"""Runs one pipeline step's component in this process and dies by SIGKILL in the middle of one file write.

    python cutter.py <step> <arguments JSON> <name> <occurrence>

The ``occurrence``-th file opened for writing whose name contains ``name`` gets half of its
first write, flushed to disk, and then the process kills itself with SIGKILL: what a node
preempted mid-write leaves behind, at a chosen point instead of a random one. ``occurrence``
0 runs the step untouched. Only Python-level writes (``open``, ``pathlib``) are cut; the
product code is not changed for the drill.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


class _DyingFile:
    """A file whose first write stops halfway, reaches the disk, and kills the process."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: Any) -> int:
        self.handle.write(data[: max(1, len(data) // 2)])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    def __enter__(self) -> _DyingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def cut_write(name: str, occurrence: int) -> None:
    """Makes the ``occurrence``-th write-mode open of a file whose name contains ``name`` fatal."""
    real_open, seen = io.open, [0]

    def opening(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if isinstance(file, str | os.PathLike) and any(m in mode for m in "wax") and name in Path(file).name:
            seen[0] += 1
            if seen[0] == occurrence:
                return _DyingFile(handle)
        return handle

    builtins.open = io.open = opening  # type: ignore[assignment]


def run_step(step: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Runs ``step`` as its component does (:func:`tunepipe.binding.run_component`), but for the
    logging set-up, which would take the root logger from the tests' ``caplog``.

    ``arguments`` are the component's keyword arguments; an artifact is ``{"artifact": <kfp.dsl
    class name>, "uri": ...}``. Returns the step's ``value`` and every artifact's ``metadata`` by
    argument name.
    """
    from kfp import dsl

    from tunepipe.binding import bind, record, step_module
    from tunepipe.dag import DAG

    built = {name: getattr(dsl, value["artifact"])(name=name, uri=value["uri"])
             if isinstance(value, dict) and "artifact" in value else value for name, value in arguments.items()}
    declared = DAG.step(step)
    module = step_module(declared)
    result = module.run(*bind(declared, module, built))
    record(declared, result, built)
    return {"value": result.value,
            "metadata": {name: value.metadata for name, value in built.items() if isinstance(value, dsl.Artifact)}}


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    step_name, payload, target, nth = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if nth:
        cut_write(target, nth)
    print("RESULT", json.dumps(run_step(step_name, payload), default=str), flush=True)
