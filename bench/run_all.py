"""Runs every benchmark section and writes docs/benchmarks.md.

    .venv/bin/python bench/run_all.py            # the full suite (make bench)
    .venv/bin/python bench/run_all.py --quick    # smaller data, one seed
    .venv/bin/python bench/run_all.py --only overhead --only quality   # some sections
    .venv/bin/python bench/run_all.py --only quality --results runs/bench   # keep each section's result
    .venv/bin/python bench/run_all.py --assemble runs/bench               # the page from kept results

Each section lives in its own module (``bench/<name>.py``) exposing ``run(quick) -> Section``.
The sections run one after another in this process, never two at once: each returns only
when its work (and any process it started) is done, and a lock file shared by every run of
this script on the machine makes a second invocation wait until the first is finished. Each
section is stamped with its start and end (ISO 8601, seconds) and the 1/5/15-minute load
average at both. The page opens with the machine, date, package versions, a table of which
section ran when and under which load, and a summary of every goal; then each section's
tables, opened by its stamp. ``--results DIR`` also keeps each section's result with its
stamp as JSON, so sections run at different times on the same machine can be assembled into
one page with ``--assemble DIR``; the table then shows when each one ran, and the page says
so if any two overlapped. A section that fails is reported as failed on the page (stamped
too) and makes the command exit non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fcntl
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PACKAGES, REPO, Goal, Section, Stamp, machine, overlapping, schedule, table

from tunepipe.reports.modelcard import package_versions

SECTIONS = ("versus", "overhead", "tune_overhead", "crossval", "quality", "tuning", "tune_sample", "throughput",
            "ingest", "serving", "scale")
# One lock for every run of this script on the machine, whichever checkout it comes from.
LOCK = Path(tempfile.gettempdir()) / "tunepipe-bench.lock"


@contextlib.contextmanager
def exclusive(lock: Path | None = None) -> Iterator[None]:
    """Holds ``lock`` (default :data:`LOCK`) for the duration: another bench run on this machine waits here."""
    lock = lock or LOCK
    try:
        handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:  # e.g. another user's lock file; the run still goes on, said so
        print(f"bench: cannot open the lock {lock} ({error}); not guarded against concurrent runs", file=sys.stderr)
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            print(f"bench: another bench run (pid {holder}) holds {lock}; waiting for it to finish", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _save(section: Section, name: str, folder: Path) -> None:
    """Keeps one section's result with its stamp (when, in which mode and under which load it ran)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(dataclasses.asdict(section), indent=1))


def _load(folder: Path) -> list[Section]:
    """The kept sections in suite order, each with its stamp."""
    sections = []
    for name in SECTIONS:
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        kept = json.loads(path.read_text())
        stamp = Stamp.from_json(kept.pop("stamp"), name) if kept.get("stamp") else None
        goals = [Goal(**goal) for goal in kept.pop("goals")]
        sections.append(Section(kept["title"], kept["command"], kept["body"], goals, stamp))
    return sections


def _run_section(name: str, quick: bool) -> tuple[Section, bool]:
    """Runs one section to completion, stamped with its start, end and the load at both."""
    stamp = Stamp.begin(name, quick)
    started = time.perf_counter()
    print(f"== bench {name}{' (quick)' if quick else ''} started {stamp.started} ...", flush=True)
    try:
        section, ok = importlib.import_module(name).run(quick), True
    except Exception:  # a failed section is reported on the page; the rest still run
        failure = traceback.format_exc()
        print(failure, file=sys.stderr)
        section, ok = Section(f"{name}: FAILED", f"`bench/run_all.py --only {name}`",
                              f"This section failed in this run:\n\n```\n{failure[-2000:]}\n```"), False
    section.stamp = stamp.finish()
    print(f"== bench {name} {'done' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s", flush=True)
    return section, ok


def _when(sections: list[Section], assembled: bool) -> list[str]:
    """The header's account of which section ran when, and a warning if any two overlapped."""
    stamps = [section.stamp for section in sections if section.stamp]
    if not stamps:
        return []
    lead = ("Sections were kept at different times (`--results`) and assembled here; when each ran" if assembled
            else "Sections ran one after another, never two at once; when each ran")
    lines = ["", f"{lead}, with the load average (1, 5, 15 min) at its start and end:", "", schedule(stamps)]
    clashes = overlapping(stamps)
    if clashes:
        pairs = "; ".join(f"{first} and {second}" for first, second in clashes)
        lines += ["", f"**Warning: these sections overlapped in time, so each disturbed the other: {pairs}.**"]
    return lines


def render(sections: list[Section], quick: bool, seconds: float, assembled: bool = False) -> str:
    """The whole docs/benchmarks.md page (``assembled``: from kept section results)."""
    versions = ", ".join(f"{name} {version}" for name, version in package_versions(PACKAGES).items())
    goals: list[Goal] = [goal for section in sections for goal in section.goals]
    verdict = {True: "met", False: "**missed**", None: "not decided here"}
    summary = table(["goal", "target", "measured", "verdict"],
                    [[g.name, g.target, g.measured, verdict[g.met]] for g in goals])
    if assembled:
        origin = (f"Assembled on {datetime.date.today().isoformat()} by `.venv/bin/python bench/run_all.py --assemble` "
                  "from sections run separately on this machine (`--results`); each section says when it ran "
                  "and under which load. Every figure of a section is measured in that section's run; each "
                  "ratio compares the medians of two measurements of the same run.")
    else:
        origin = ("Written by `make bench` (`.venv/bin/python bench/run_all.py"
                  f"{' --quick' if quick else ''}`) on {datetime.date.today().isoformat()} in "
                  f"{seconds / 60:.0f} min{' (quick mode: smaller data, one seed)' if quick else ''}. "
                  "Every figure is measured in this run; each ratio compares the medians of two measurements "
                  "of the same run.")
    parts = [
        "# Benchmarks",
        "",
        origin,
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in machine().items()) + ". No GPU.",
        "",
        f"Packages: {versions}.",
        *_when(sections, assembled),
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
        parts += ["", f"## {section.title}", "", f"Command: `{section.command}`"]
        parts += ["", section.stamp.line()] if section.stamp else []
        parts += ["", section.body.strip()]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and one seed")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="where to write the page (default docs/benchmarks.md)")
    parser.add_argument("--results", type=Path, help="also keep each section's result as JSON in this folder")
    parser.add_argument("--assemble", type=Path, help="write the page from results kept with --results; run nothing")
    args = parser.parse_args(argv)
    if args.assemble:
        sections = _load(args.assemble)
        if not sections:
            parser.error(f"no kept section results in {args.assemble}")
        args.output.write_text(render(sections, args.quick, 0.0, assembled=True))
        print(f"wrote {args.output} from {len(sections)} kept sections")
        return 0
    results = []
    with exclusive():
        started = time.perf_counter()  # after any wait for another run
        for name in args.only or SECTIONS:
            section, ok = _run_section(name, args.quick)
            if ok and args.results:
                _save(section, name, args.results)
            results.append((section, ok))
    page = render([section for section, _ in results], args.quick, time.perf_counter() - started)
    args.output.write_text(page)
    print(f"wrote {args.output}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
