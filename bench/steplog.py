"""Per-step wall time and peak memory of a ``tunepipe run``, read from its own log.

kfp.local stamps ``Executing task 'x'`` and ``Task 'x' finished with status ...`` with the
time of day to the millisecond, and every tunepipe step prints its peak resident memory when
its process ends (:func:`tunepipe.step_logging.report_peak_memory`). Both are measurements the
run itself makes; nothing here estimates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.step_logs import strip_ansi
from tunepipe.step_logging import PEAK_MEMORY_PREFIX

STARTED = re.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?) - \w+ - Executing task '([^']+)'")
FINISHED = re.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?) - \w+ - Task '([^']+)' finished with status (\w+)")
PEAK = re.compile(rf"^{re.escape(PEAK_MEMORY_PREFIX)} ([\d.]+) MiB")
DAY = 24 * 3600.0


@dataclass
class StepRecord:
    """One task of a kfp.local run: wall seconds from start to finish, and its process's peak RSS."""

    seconds: float = 0.0
    peak_mib: float | None = None
    status: str = ""


def _clock(hours: str, minutes: str, seconds: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def step_records(log: str) -> dict[str, StepRecord]:
    """The tasks a kfp.local run executed (cache hits are not executed), in order of start.

    Args:
        log: The standard output of ``tunepipe run --verbose`` (kfp.local's lines, with colour codes on
            a terminal), or a run's step logs (``<output>/logs/<run>/*.log``) joined in order.

    Returns:
        Task name to its record; a peak-memory line belongs to the task executing when it appears.
    """
    records: dict[str, StepRecord] = {}
    started: dict[str, float] = {}
    current = ""
    for raw in log.splitlines():
        line = strip_ansi(raw).strip()
        if match := STARTED.match(line):
            current = match.group(4)
            started[current] = _clock(*match.group(1, 2, 3))
            records[current] = StepRecord()
        elif match := FINISHED.match(line):
            task = match.group(4)
            if task in started:
                elapsed = _clock(*match.group(1, 2, 3)) - started[task]
                records[task].seconds = elapsed + DAY if elapsed < 0 else elapsed  # a run past midnight
                records[task].status = match.group(5)
        elif (match := PEAK.match(line)) and current in records:
            records[current].peak_mib = float(match.group(1))
    return records
