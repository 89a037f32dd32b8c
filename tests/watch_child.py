"""``tunepipe watch`` in a process that SIGKILLs itself at one point of the submit path.

    python tests/watch_child.py POINT tunepipe-watch-arguments...

POINT is one of :data:`POINTS` (or ``none``). The kill is a real SIGKILL of this process, as
the OOM killer or a node loss would deliver it, at the named point: before or after the
create-only write of the claim, before the run is submitted, after the server created it but
before the record links it, or after the link.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

POINTS = ("before-claim", "after-claim", "before-submit", "after-submit", "after-link")


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner: Any, name: str, before: str | None, after: str | None, point: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if before == point:
            _kill()
        result = original(*args, **kwargs)
        if after == point:
            _kill()
        return result

    setattr(owner, name, wrapped)


def main(point: str, argv: list[str]) -> int:
    from pipelines import cli
    from pipelines.remote_kfp import Cluster
    from tunepipe.watching import records, watcher

    for slot in (records.LocalSlot, records.StoreSlot):
        _wrap(slot, "create", "before-claim", "after-claim", point)
    _wrap(Cluster, "submit", "before-submit", "after-submit", point)
    _wrap(watcher.Watcher, "_settle", None, "after-link", point)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
