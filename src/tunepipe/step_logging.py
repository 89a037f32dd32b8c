"""How every step process logs: progress lines on stdout, one line for expected errors, and its
peak memory when it ends.

Kept free of heavy imports (no pandas, no Keras): the fingerprint step uses it too, and every
step process pays for what this module imports.
"""

from __future__ import annotations

import atexit
import logging
import resource
import sys
import warnings
from pathlib import Path
from typing import Any

from tunepipe.errors import TunepipeError

PEAK_MEMORY_PREFIX = "tunepipe: peak memory of this step:"
# How an expected error that ends a step starts its one line; `tunepipe run` shows that line last.
ERROR_PREFIX = "error: "


def _report_expected_errors(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    if isinstance(error, TunepipeError):
        print(f"{ERROR_PREFIX}{error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, trace)


def peak_memory_mib() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux ``VmHWM`` of ``/proc/self/status``: the high-water mark of this program's own address
    space. ``ru_maxrss`` is not used there because a process started by ``fork`` or ``vfork`` and
    ``exec`` inherits its parent's high-water mark in it (a step started from a 2 GiB process would
    report 2 GiB). Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def report_peak_memory() -> None:
    """Prints the process's peak resident memory: the figure a pod's memory request has to cover."""
    print(f"{PEAK_MEMORY_PREFIX} {peak_memory_mib():.0f} MiB", flush=True)


def configure_logging() -> None:
    """Progress lines on stdout, without TensorFlow's and Keras's routine warnings.

    Also makes an expected error (:class:`~tunepipe.errors.TunepipeError`) that ends the step
    print one ``error: ...`` line instead of a traceback (the exit status stays non-zero), and
    has the process print its peak memory when it exits (once, however often this is called).
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    sys.excepthook = _report_expected_errors
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    atexit.unregister(report_peak_memory)
    atexit.register(report_peak_memory)
