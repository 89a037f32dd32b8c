"""docs/reliability.md names a test for every promise: each one it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
# "unit/test_x.py::test_a, ::test_b" (a bare ::name is in the file named before it), or a whole file.
REFERENCE = re.compile(r"(?:([\w/]+\.py))?(?:::(\w+))?")


def named_tests() -> list[tuple[str, str | None]]:
    """(file under tests/, test name or None for a whole file) for every reference in the tables."""
    named: list[tuple[str, str | None]] = []
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 5 or not (".py" in cells[-2] or cells[-2].startswith("::")):
            continue
        current = ""
        for item in cells[-2].split(", "):
            match = REFERENCE.match(item.strip())
            assert match and (match.group(1) or match.group(2)), f"unreadable reference {item!r} in: {line}"
            current = match.group(1) or current
            named.append((current, match.group(2)))
    return named


def test_the_reliability_table_names_tests() -> None:
    assert len(named_tests()) >= 60


@pytest.mark.parametrize(("file", "test"), named_tests())
def test_every_named_test_exists(file: str, test: str | None) -> None:
    path = ROOT / "tests" / file
    assert path.is_file(), f"docs/reliability.md names {file}, which does not exist"
    if test:
        assert re.search(rf"def {test}\(", path.read_text()), f"docs/reliability.md names {file}::{test}, not found"
