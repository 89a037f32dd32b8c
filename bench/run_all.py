"""Runs every benchmark section and writes docs/benchmarks.md.

    .venv/bin/python bench/run_all.py            # the full suite (make bench)
    .venv/bin/python bench/run_all.py --quick    # smaller data, one seed: under 10 minutes
    .venv/bin/python bench/run_all.py --only overhead --only quality   # some sections
    .venv/bin/python bench/run_all.py --only quality --results runs/bench   # keep each section's result
    .venv/bin/python bench/run_all.py --assemble runs/bench               # the page from kept results

Each section lives in its own module (``bench/<name>.py``) exposing ``run(quick) -> Section``.
The page opens with the machine, date, package versions and a summary of every goal, then
holds each section's tables. ``--results DIR`` also keeps each section's result (with when and
under which load it ran) as JSON, so sections run at different times on the same machine can
be assembled into one page with ``--assemble DIR``; the page then says when each one ran.
A section that fails is reported as failed on the page and makes the command exit non-zero;
the others still run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PACKAGES, REPO, Goal, Section, machine, table

from tunepipe.reports.modelcard import package_versions

SECTIONS = ("overhead", "quality", "tuning", "throughput", "ingest", "serving")


def _save(section: Section, name: str, folder: Path, quick: bool) -> None:
    """Keeps one section's result, stamped with the time, mode and load it ran under."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = {"ran": datetime.datetime.now().isoformat(timespec="minutes"), "quick": quick,
             "load": ", ".join(f"{value:.1f}" for value in os.getloadavg())}
    (folder / f"{name}.json").write_text(json.dumps({**dataclasses.asdict(section), "stamp": stamp}, indent=1))


def _load(folder: Path) -> list[Section]:
    """The kept sections in suite order, each body opened by when and under which load it ran."""
    sections = []
    for name in SECTIONS:
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        kept = json.loads(path.read_text())
        stamp = kept.pop("stamp")
        goals = [Goal(**goal) for goal in kept.pop("goals")]
        ran = (f"_Ran {stamp['ran']}{' (quick mode)' if stamp['quick'] else ''}, load average "
               f"{stamp['load']} (1, 5, 15 min)._\n\n")
        sections.append(Section(kept["title"], kept["command"], ran + kept["body"], goals))
    return sections


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


def render(sections: list[Section], quick: bool, seconds: float, assembled: bool = False) -> str:
    """The whole docs/benchmarks.md page (``assembled``: from kept section results, each stamped)."""
    versions = ", ".join(f"{name} {version}" for name, version in package_versions(PACKAGES).items())
    about = machine()
    if assembled:  # each kept section carries the load it ran under; today's would mislead
        about = {key: value for key, value in about.items() if not key.startswith("load average")}
    goals: list[Goal] = [goal for section in sections for goal in section.goals]
    verdict = {True: "met", False: "**missed**", None: "not decided here"}
    summary = table(["goal", "target", "measured", "verdict"],
                    [[g.name, g.target, g.measured, verdict[g.met]] for g in goals])
    if assembled:
        origin = (f"Assembled on {datetime.date.today().isoformat()} by `.venv/bin/python bench/run_all.py --assemble` "
                  "from sections run separately on this machine (`--results`); each section says when it ran "
                  "and under which load. Every figure of a section is measured in that section's run; each "
                  "ratio compares two measurements of the same run.")
    else:
        origin = ("Written by `make bench` (`.venv/bin/python bench/run_all.py"
                  f"{' --quick' if quick else ''}`) on {datetime.date.today().isoformat()} in "
                  f"{seconds / 60:.0f} min{' (quick mode: smaller data, one seed)' if quick else ''}. "
                  "Every figure is measured in this run; each ratio compares two measurements of the same run.")
    parts = [
        "# Benchmarks",
        "",
        origin,
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
    parser.add_argument("--results", type=Path, help="also keep each section's result as JSON in this folder")
    parser.add_argument("--assemble", type=Path, help="write the page from results kept with --results; run nothing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.assemble:
        sections = _load(args.assemble)
        if not sections:
            parser.error(f"no kept section results in {args.assemble}")
        args.output.write_text(render(sections, args.quick, 0.0, assembled=True))
        print(f"wrote {args.output} from {len(sections)} kept sections")
        return 0
    results = []
    for name in args.only or SECTIONS:
        section, ok = _run_section(name, args.quick)
        if ok and args.results:
            _save(section, name, args.results, args.quick)
        results.append((section, ok))
    page = render([section for section, _ in results], args.quick, time.perf_counter() - started)
    args.output.write_text(page)
    print(f"wrote {args.output}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
