"""Runs every benchmark section and writes docs/benchmarks.md.

    .venv/bin/python bench/run_all.py            # the full suite (make bench)
    .venv/bin/python bench/run_all.py --quick    # smaller data, one seed: under 10 minutes
    .venv/bin/python bench/run_all.py --only overhead --only quality   # some sections

Each section lives in its own module (``bench/<name>.py``) exposing ``run(quick) -> Section``.
The page opens with the machine, date, package versions and a summary of every goal, then
holds each section's tables. A section that fails is reported as failed on the page and makes
the command exit non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Goal, Section, machine, package_versions, table

SECTIONS = ("overhead", "quality", "tuning", "throughput", "ingest")


def _run_section(name: str, quick: bool) -> tuple[Section, bool]:
    started = time.perf_counter()
    print(f"== bench {name}{' (quick)' if quick else ''} ...", flush=True)
    try:
        section = importlib.import_module(name).run(quick)
    except Exception:  # a failed section is reported on the page; the rest still run
        failure = traceback.format_exc()
        print(failure, file=sys.stderr)
        return Section(f"{name}: FAILED", f"`bench/run_all.py --only {name}`",
                       f"This section failed in this run:\n\n```\n{failure[-2000:]}\n```"), False
    print(f"== bench {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    return section, True


def render(sections: list[Section], quick: bool, seconds: float) -> str:
    """The whole docs/benchmarks.md page."""
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    about = machine()
    goals: list[Goal] = [goal for section in sections for goal in section.goals]
    verdict = {True: "met", False: "**missed**", None: "not decided here"}
    summary = table(["goal", "target", "measured", "verdict"],
                    [[g.name, g.target, g.measured, verdict[g.met]] for g in goals])
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python bench/run_all.py"
        f"{' --quick' if quick else ''}`) on {datetime.date.today().isoformat()} in "
        f"{seconds / 60:.0f} min{' (quick mode: smaller data, one seed)' if quick else ''}. "
        "Every figure is measured in this run; each ratio compares two measurements of the same run.",
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in about.items()) + ". No GPU.",
        "",
        f"Packages: {versions}.",
        "",
        "## Summary",
        "",
        summary,
    ]
    missed = [g for g in goals if g.met is False]
    if missed:
        parts += ["", "Goals missed, and why:", ""]
        parts += [f"- **{g.name}**: {g.note}" for g in missed]
    for section in sections:
        parts += ["", f"## {section.title}", "", f"Command: `{section.command}`", "", section.body.strip()]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and one seed (under 10 minutes)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="where to write the page (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = [_run_section(name, args.quick) for name in (args.only or SECTIONS)]
    page = render([section for section, _ in results], args.quick, time.perf_counter() - started)
    args.output.write_text(page)
    print(f"wrote {args.output}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
