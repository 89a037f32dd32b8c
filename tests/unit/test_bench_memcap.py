"""bench/memcap.py: a command over its memory cap is killed, one under it finishes; both enforcements."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

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
    over = memcap.run_capped(_allocate(400), CAP)
    assert over.returncode != 0 and over.killed_by_cap
    under = memcap.run_capped(_allocate(50), CAP)
    assert under.returncode == 0 and not under.killed_by_cap and "ok" in under.output
    assert 50 < under.peak_rss_mib < 200  # its own peak: the array and Python, not this test process's pages
    if enforcement == "watchdog":
        assert under.enforcement == "watchdog"
