"""Fixtures every test tier shares."""

import logging
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _restore_process_state() -> Iterator[None]:
    """Components call configure_logging(), which replaces the excepthook and the root log
    handlers; each test module gets the process back as it found it."""
    root = logging.getLogger()
    saved = (sys.excepthook, list(root.handlers), root.level)
    yield
    sys.excepthook = saved[0]
    root.handlers[:] = saved[1]
    root.setLevel(saved[2])
