"""One run at a time in a shared working folder (tuner state, training backup).

With a ``tuner_root``, runs of the same data and search share one tuner folder and one
training backup folder: that is what lets a re-run resume. Two runs started at once would
write the same trial and checkpoint files; instead the second waits for the first and then
resumes its finished search (or trains afresh on the same inputs). The lock is ``flock`` on
a hidden file beside the folder: the kernel drops it when its holder dies, so a killed run
never leaves a stale lock. Only local folders are locked; gs:// state is worked on in a
local scratch folder and mirrored (see :mod:`tunepipe.storage.tuner_state`).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def lock_file(folder: Path) -> Path:
    """The hidden lock file beside ``folder``."""
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def exclusive(folder: str | Path, step: str) -> Iterator[None]:
    """Holds an exclusive lock on ``folder`` (a local path) while the block runs; waits for it if taken.

    Args:
        folder: The shared working folder; its parent is created if missing.
        step: The step's name, for the waiting message.
    """
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    with lock_file(target).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: %s is in use by another run; waiting until it is done", step, target)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
