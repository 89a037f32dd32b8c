"""Every relative link in the project's Markdown points at a file that exists, and every anchor at a heading.

The README is a map of docs/, and each fact lives on one page that the others link to: a page renamed
or a heading reworded must not leave a link behind that leads nowhere. Anchors follow GitHub's rule
(lowercase, punctuation dropped, spaces as hyphens, a repeated heading numbered -1, -2, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    {ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("k8s/**/*.md"), *ROOT.glob("src/**/README.md"),
     *ROOT.glob("tests/**/README.md")}
)
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(page.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", page.read_text()))
    return found


def links(page: Path) -> list[str]:
    """Every link target on the page, outside code blocks and code spans."""
    return [target for line in prose_lines(page.read_text()) for target in LINK.findall(CODE_SPAN.sub("", line))]


def relative_links() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), target)
        for page in PAGES
        for target in links(page)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ... are not checked here
    ]


def test_the_pages_have_links() -> None:
    """Guards the guard: the scan finds the README's links into docs/."""
    assert len(relative_links()) >= 50
    assert ("README.md", "docs/commands.md") in relative_links()


@pytest.mark.parametrize(("page", "target"), relative_links())
def test_every_relative_link_resolves(page: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (ROOT / page).parent / path if path else ROOT / page
    assert destination.exists(), f"{page} links to {target}: {destination.relative_to(ROOT)} does not exist"
    assert destination.resolve().is_relative_to(ROOT), f"{page} links to {target}, outside the repository"
    if anchor:
        assert destination.suffix == ".md", f"{page} links to {target}: an anchor on a file that is not Markdown"
        assert anchor in anchors(destination), (
            f"{page} links to {target}: no heading of {destination.relative_to(ROOT)} has the anchor #{anchor}"
        )


def test_anchors_follow_githubs_rule() -> None:
    assert slug("Retries (every gs:// and s3:// call: data reads, tuner-state mirror, export)") == (
        "retries-every-gs-and-s3-call-data-reads-tuner-state-mirror-export"
    )
    assert slug("Data larger than memory (`data.streaming`)") == "data-larger-than-memory-datastreaming"
    assert slug("Every GPU of a node (`training.placement: node`)") == "every-gpu-of-a-node-trainingplacement-node"


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    """Guards the guard: the parser sees links, skips code, and numbers repeated headings."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Part\n\n## Part\n\nSee [a](other.md#x) and `[not](a-link.md)`.\n\n"
        "```\n[no](link.md)\n# no heading\n```\n"
    )
    assert links(page) == ["other.md#x"]
    assert anchors(page) == {"title", "part", "part-1"}
