"""What ``tunepipe run`` prints, and where the rest goes: a log file per step, a few lines on screen.

kfp.local prints every step's executor input, everything the step writes and its outputs'
metadata: hundreds of lines a run, which push the summary out of sight. While a run goes,
:meth:`RunLog.capturing` puts a :class:`LogRouter` in place of ``sys.stdout`` and ``sys.stderr``,
so everything this process writes (kfp.local's log lines, the subprocess runner's and the docker
runner's streamed step output, warnings) lands, without terminal colour codes, in
``<output>/logs/<run>/<step>.log`` for the step running on that thread, else in that folder's
``run.log``. ``<run>`` is kfp.local's name of the run, the folder's name under ``pipeline_root``.

The screen gets a line when a step starts and one when it ends (time, peak memory, its key
result), tuning progress and the summary; ``verbose`` echoes everything as well, as kfp.local
prints it. A failed step ends the run with its last lines, its log's path and its ``error:`` line.
This module knows nothing of kfp: :mod:`pipelines.local_run` connects it to kfp.local.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TextIO

from tunepipe.step_logging import ERROR_PREFIX, PEAK_MEMORY_PREFIX

# Under the run's output folder: one folder per run, one file per step.
LOGS_DIR = "logs"
# kfp.local's lines outside any step (the run's start and end, skipped branches, warnings).
RUN_LOG = "run.log"
# A failed step's last lines shown above its error line; the rest is in its log file.
TAIL_LINES = 20
# At most this many tuning progress lines on screen, however many trials the search schedules.
PROGRESS_LINES = 4
# A distributed search's workers print no schedule count: a progress line every this many trials.
PROGRESS_EVERY_UNCOUNTED = 5

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # CSI sequences: kfp.local's colours
KFP_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ - [A-Z]+ - ")  # "23:04:58.433 - INFO - Executing task ..."
RULE = re.compile(r"^-{10,}$")  # kfp.local's line between tasks
EXECUTOR_PREFIX = "[KFP Executor "  # the KFP executor's own lines inside the step
EXECUTOR_INPUT = "Got executor_input:"  # followed by the executor input as indented JSON
# The tune step's line at the end of each trial (tunepipe.modelling.tune, PipelineTunerMixin.on_trial_end):
# "tune: trial 0001 (2/23 scheduled) completed, val_loss=1.0063, 2 epochs"; workers print no count.
TRIAL_END = re.compile(r"tune: trial \S+(?: \((\d+)/(\d+) scheduled\))? (\w+), (\w+)=(\S+), \d+ epochs")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours)."""
    return ANSI.sub("", text)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False


class Console:
    """The reader's screen: the standard output as it was before the run, colours kept only on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = _is_terminal(stream)

    def say(self, line: str) -> None:
        """Prints one line of tunepipe's own."""
        self.echo(f"tunepipe: {line}\n")

    def echo(self, text: str) -> None:
        """Writes ``text`` as it is, without colour codes unless the stream is a terminal."""
        self.stream.write(text if self.terminal else strip_ansi(text))
        self.stream.flush()


class TrialProgress:
    """Turns the tune step's per-trial lines into at most :data:`PROGRESS_LINES` lines on screen.

    The best score is the lowest, unless the objective is an accuracy (Keras Tuner maximises those).
    """

    def __init__(self) -> None:
        self.ended = 0
        self.failed = 0
        self.best: float | None = None

    def line(self, text: str) -> str | None:
        """The progress line ``text`` calls for, if any."""
        match = TRIAL_END.search(text)
        if match is None:
            return None
        done, total, status, objective, score = match.groups()
        self.ended += 1
        self.failed += status != "completed"
        self._note_score(objective, score)
        count = int(done) if done else self.ended
        if not self._due(count, int(total) if total else None):
            return None
        of = f"/{total}" if total else ""
        failed = f" ({self.failed} failed)" if self.failed else ""
        best = "" if self.best is None else f", best {objective} {self.best:.4f}"
        return f"{count}{of} trials done{failed}{best}"

    def _note_score(self, objective: str, score: str) -> None:
        try:
            value = float(score)
        except ValueError:  # "n/a": a failed trial
            return
        if math.isfinite(value):
            better = max if "accuracy" in objective else min
            self.best = value if self.best is None else better(self.best, value)

    @staticmethod
    def _due(count: int, total: int | None) -> bool:
        if total is None:
            return count % PROGRESS_EVERY_UNCOUNTED == 0
        return count == total or count % math.ceil(total / PROGRESS_LINES) == 0


class StepLog:
    """One step's log file, and what the screen needs from it: peak memory, progress, error line, last lines.

    Args:
        name: The step (kfp.local's task name).
        path: Its log file, appended to (a retried step keeps one file).
        progress: Where tuning progress lines go; ``None`` shows none (``--verbose`` shows the trials).
    """

    def __init__(self, name: str, path: Path, progress: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.path = path
        self.started = time.monotonic()
        self.peak_mib: float | None = None
        self.error_line: str | None = None
        self.exception: BaseException | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._progress = progress
        self._trials = TrialProgress()
        self._partial = ""
        self._json_end: str | None = None  # while inside the executor input: the line that ends it
        self._input_next = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def write(self, text: str) -> None:
        """Takes what was written; complete lines go to the file, colour codes stripped."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(strip_ansi(line))

    def close(self) -> None:
        if self._partial:
            self._line(strip_ansi(self._partial))
            self._partial = ""
        self._file.close()

    def _line(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()  # `tail -f` follows the step, and a killed run keeps its log
        if not self._is_own(line):
            return
        own = line.strip()
        if own.startswith(PEAK_MEMORY_PREFIX):
            self.peak_mib = float(own.removeprefix(PEAK_MEMORY_PREFIX).split()[0])
        if own.startswith(ERROR_PREFIX):
            self.error_line = own  # shown last, not in the tail
            return
        self.tail.append(line)
        progress = self._trials.line(own)
        if progress and self._progress:
            self._progress(f"step {self.name!r}: {progress}")

    def _is_own(self, line: str) -> bool:
        """Whether ``line`` is the step's own: not kfp.local's, not the KFP executor's, not blank."""
        if self._json_end is not None:
            if line.rstrip() == self._json_end:
                self._json_end = None
            return False
        stripped = line.strip()
        if self._input_next and stripped == "{":
            self._json_end = line.rstrip()[:-1] + "}"
            return False
        self._input_next = stripped.startswith(EXECUTOR_PREFIX) and stripped.endswith(EXECUTOR_INPUT)
        return bool(stripped) and not (KFP_LOG_LINE.match(line) or RULE.match(stripped)
                                       or stripped.startswith(EXECUTOR_PREFIX))

    def seconds(self) -> float:
        return time.monotonic() - self.started


class LogRouter(io.TextIOBase):
    """``sys.stdout`` and ``sys.stderr`` during a run: every write goes to :meth:`RunLog.route`."""

    def __init__(self, run: RunLog) -> None:
        super().__init__()
        self._run = run

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._run.route(text)
        return len(text)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class RunLog:
    """The logs of one local run: the step running on each thread, the run's own log, the screen.

    Args:
        root: Folder that holds a folder per run (``<output>/logs``).
        console: The screen.
        verbose: Echo everything to the screen as well, as kfp.local prints it (default off: a
            line per step start and end, tuning progress, cache hits).
    """

    def __init__(self, root: Path, console: Console, verbose: bool = False) -> None:
        self.root = root
        self.console = console
        self.verbose = verbose
        self.folder: Path | None = None
        self.failed: StepLog | None = None
        self._steps: dict[int, StepLog] = {}
        self._run: StepLog | None = None
        self._early: list[str] = []  # written before the run has a name

    def open(self, run_name: str) -> None:
        """Starts the run's folder once kfp.local has named the run; what came before goes in ``run.log``."""
        self.folder = self.root / run_name
        self._run = StepLog(RUN_LOG.removesuffix(".log"), self.folder / RUN_LOG)
        self.console.say(f"step logs in {self.folder}")  # also with verbose; to follow a step: tail -f
        for text in self._early:
            self._run.write(text)
        self._early.clear()

    def route(self, text: str) -> None:
        """Sends ``text`` to the log of the step running on this thread, else to ``run.log``."""
        if self.verbose:
            self.console.echo(text)
        target = self._steps.get(threading.get_ident(), self._run)
        if target is None:
            self._early.append(text)
        else:
            target.write(text)

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Routes ``sys.stdout``, ``sys.stderr`` and the root logger's records here while it lasts.

        The root logger gets a handler of its own, so kfp.local's records outside a task (skipped
        branches, workspace clean-up) land in ``run.log`` instead of a ``logging.basicConfig``
        handler on the terminal's stderr.
        """
        router = LogRouter(self)
        handler = logging.StreamHandler(router)
        handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            with redirect_stdout(router), redirect_stderr(router):
                yield
        finally:
            root.removeHandler(handler)
            if self._run is not None:
                self._run.close()
            elif self._early and not self.verbose:  # kfp.local stopped before naming a run: nowhere to file it
                self.console.echo("".join(self._early))

    @contextmanager
    def step(self, name: str) -> Iterator[StepLog]:
        """The log of step ``name`` while it runs on this thread; an exception marks it failed."""
        folder = self.folder or self.root
        log = StepLog(name, folder / f"{name}.log", progress=None if self.verbose else self._say)
        thread = threading.get_ident()
        self._steps[thread] = log
        self._say(f"step {name!r} started")
        try:
            yield log
        except BaseException as error:
            log.exception = error
            self._fail(log)
            raise
        finally:
            del self._steps[thread]
            log.close()

    def finished(self, log: StepLog, ok: bool, result: str = "") -> None:
        """Ends step ``log``'s line on screen: time, peak memory and ``result``; or marks it failed."""
        if not ok:
            self._fail(log)
            return
        self._say(f"step {log.name!r} done in {self._measures(log)}" + (f": {result}" if result else ""))

    def cached(self, task: str) -> None:
        """A step kfp.local served from its cache: one line on screen (also with ``verbose``) and in ``run.log``."""
        line = f"step {task!r} served from the cache"
        self.console.say(line)
        text = f"tunepipe: {line}\n"
        if self._run is None:
            self._early.append(text)
        else:
            self._run.write(text)

    def failure_lines(self) -> list[str]:
        """How a failed run ends: the failed step's last lines (unless already on screen), its log, its error."""
        log = self.failed
        if log is None:
            return []
        lines = [] if self.verbose else list(log.tail)
        lines.append(f"tunepipe: the whole log of step {log.name!r}: {log.path}")
        if log.error_line:
            lines.append(log.error_line)
        elif log.exception is not None:
            lines.append(f"{ERROR_PREFIX}step {log.name!r} failed: {type(log.exception).__name__}: {log.exception}")
        else:
            lines.append(f"{ERROR_PREFIX}step {log.name!r} failed")
        return [line if self.console.terminal else strip_ansi(line) for line in lines]

    def _fail(self, log: StepLog) -> None:
        self.failed = log
        self._say(f"step {log.name!r} FAILED after {self._measures(log)}")

    @staticmethod
    def _measures(log: StepLog) -> str:
        peak = "" if log.peak_mib is None else f", peak {log.peak_mib:.0f} MiB"
        return f"{log.seconds():.1f} s{peak}"

    def _say(self, line: str) -> None:
        if not self.verbose:
            self.console.say(line)
