"""bench/memcap.py: the one way a benchmark runs a child. A command over its memory cap is killed, one
under it finishes (both enforcements); with or without a cap, the peak is the child's own VmHWM, not a
high-water mark it inherited through fork from a large parent (what ``ru_maxrss`` would report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
import memcap  # noqa: E402

pytestmark = pytest.mark.unit
CAP = 200 * 2**20


def _allocate(megabytes: int) -> list[str]:
    program = f"import numpy as np, time; a = np.ones({megabytes} * 2**20 // 8); time.sleep(0.3); print('ok', a.size)"
    return [sys.executable, "-c", program]


@pytest.mark.parametrize("enforcement", ["kernel", "watchdog"])
def test_over_the_cap_is_killed_and_under_it_finishes(enforcement: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if enforcement == "watchdog":
        monkeypatch.setattr(memcap, "_cgroup", lambda cap: None)
    over = memcap.run_measured(_allocate(400), CAP, merge_output=True)
    assert over.returncode != 0 and over.killed_by_cap
    under = memcap.run_measured(_allocate(50), CAP, merge_output=True)
    assert under.returncode == 0 and not under.killed_by_cap and "ok" in under.output
    assert 50 < under.peak_rss_mib < 200  # its own peak: the array and Python, not this test process's pages
    if enforcement == "watchdog":
        assert under.enforcement == "watchdog"


# A process that reached 300 MiB and freed it, then measures a small child both ways: ru_maxrss carries the
# parent's high-water mark across fork and exec, VmHWM is the child's own.
INHERITED = f"""
import json, resource, subprocess, sys
sys.path.insert(0, {str(ROOT / "bench")!r})
import numpy as np
import memcap
block = np.ones(300 * 2**20 // 8)
del block
small = [sys.executable, "-c", "import time; time.sleep(0.5)"]
subprocess.run(small, check=True)
print(json.dumps({{"ru_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "vmhwm": memcap.run_measured(small).peak_rss_mib}}))
"""
# A small parent whose child allocates 300 MiB: the peak is the child's, found in the parent's process group.
GRANDCHILD = """
import subprocess, sys
subprocess.run([sys.executable, "-c", "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(0.5)"])
"""


def test_the_peak_is_the_childs_own_not_a_mark_inherited_through_fork() -> None:
    measured = json.loads(memcap.run_measured([sys.executable, "-c", INHERITED]).stdout.splitlines()[-1])
    assert measured["ru_maxrss"] > 300  # what the old wrappers read: the parent's mark
    assert measured["vmhwm"] < 100  # Python sleeping


def test_the_peak_is_that_of_the_largest_process_of_the_group() -> None:
    run = memcap.run_measured([sys.executable, "-c", GRANDCHILD])
    assert run.returncode == 0 and run.enforcement == "" and not run.killed_by_cap
    assert 300 < run.peak_rss_mib < 450


def test_run_child_keeps_stdout_apart_and_raises_with_the_error_output() -> None:
    ran = common.run_child([sys.executable, "-c", "import sys; print('out'); sys.stderr.write('err')"])
    assert ran.stdout == "out\n" and ran.stderr == "err" and ran.seconds > 0 and ran.peak_rss_mib > 1
    with pytest.raises(RuntimeError, match=r"exited 3:\nboom"):
        common.run_child([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
