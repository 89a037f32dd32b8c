"""The benchmark runner: sections run one after another, each stamped with its start, end and load,
and the page says which section ran when (also when assembled from sections kept at different times)."""

import sys
import threading
import time
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import run_all  # noqa: E402
from common import Section, Stamp, overlapping, schedule  # noqa: E402


def _fake_sections(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> list[tuple[str, str]]:
    """Replaces the named section modules by ones that note when they start and end; returns the notes."""
    events: list[tuple[str, str]] = []

    def module(name: str) -> types.ModuleType:
        def run(quick: bool) -> Section:
            events.append(("start", name))
            time.sleep(1.1)  # so that stamps, kept to the second, tell the sections apart
            events.append(("end", name))
            if name == "ingest":
                raise RuntimeError("ingest broke")
            return Section(f"{name} title", f"run {name}", f"{name} body")

        fake = types.ModuleType(name)
        fake.run = run  # type: ignore[attr-defined]
        return fake

    for name in names:
        monkeypatch.setitem(sys.modules, name, module(name))
    return events


def test_sections_run_one_after_another_and_the_page_says_when(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run_all, "LOCK", tmp_path / "bench.lock")
    events = _fake_sections(monkeypatch, ["overhead", "tuning", "ingest"])
    page, kept = tmp_path / "page.md", tmp_path / "kept"
    argv = ["--only", "overhead", "--only", "tuning", "--only", "ingest", "--output", str(page), "--results", str(kept)]

    assert run_all.main(argv) == 1  # ingest failed; the others still ran

    assert events == [(edge, name) for name in ("overhead", "tuning", "ingest") for edge in ("start", "end")]
    text = page.read_text()
    assert "| section | started | ended | load at start | load at end |" in text
    assert "never two at once" in text and "overlapped" not in text
    for name in ("overhead", "tuning", "ingest"):
        assert f"\n| {name} | " in text
    assert text.count("_Ran from ") == 3  # every section opens with its stamp, the failed one too
    assert sorted(path.name for path in kept.iterdir()) == ["overhead.json", "tuning.json"]


def test_assembled_page_shows_when_each_kept_section_ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run_all, "LOCK", tmp_path / "bench.lock")
    _fake_sections(monkeypatch, ["overhead", "quality"])
    kept, page = tmp_path / "kept", tmp_path / "page.md"
    run_all.main(["--only", "quality", "--output", str(tmp_path / "a.md"), "--results", str(kept)])
    run_all.main(["--only", "overhead", "--quick", "--output", str(tmp_path / "b.md"), "--results", str(kept)])

    assert run_all.main(["--assemble", str(kept), "--output", str(page)]) == 0

    text = page.read_text()
    assert "kept at different times" in text
    rows = [line for line in text.splitlines() if line.startswith(("| overhead", "| quality"))]
    assert [row.split(" | ")[0] for row in rows] == ["| overhead (quick)", "| quality"]  # suite order
    quality_start = rows[1].split(" | ")[1]
    overhead_start = rows[0].split(" | ")[1]
    assert quality_start < overhead_start  # the table shows quality was kept first
    assert "in quick mode" in text


def test_stamp_renders_start_end_and_load() -> None:
    stamp = Stamp("ingest", "2026-12-01T10:00:05+00:00", "2026-12-01T10:12:40+00:00", [0.52, 0.61, 0.7],
                  [1.9, 1.2, 0.88], quick=True)

    assert stamp.line() == ("_Ran from 2026-12-01T10:00:05+00:00 to 2026-12-01T10:12:40+00:00 in quick mode; "
                            "load average (1, 5, 15 min) 0.5, 0.6, 0.7 at the start, 1.9, 1.2, 0.9 at the end._")
    assert schedule([stamp]).splitlines() == [
        "| section | started | ended | load at start | load at end |",
        "|---|---|---|---|---|",
        "| ingest (quick) | 2026-12-01T10:00:05+00:00 | 2026-12-01T10:12:40+00:00 | 0.5, 0.6, 0.7 | 1.9, 1.2, 0.9 |",
    ]


def test_stamp_opened_and_closed_now_records_seconds_and_three_loads() -> None:
    stamp = Stamp.begin("serving", quick=False).finish()

    assert len(stamp.started) == len(stamp.ended) == len("2026-12-01T10:00:05+00:00")
    assert len(stamp.load_start) == len(stamp.load_end) == 3
    assert Stamp.from_json(run_all.dataclasses.asdict(stamp), "serving") == stamp


def test_results_kept_before_end_times_were_recorded_still_assemble() -> None:
    stamp = Stamp.from_json({"ran": "2026-11-29T13:23", "quick": False, "load": "3.6, 4.1, 4.2"}, "overhead")

    assert stamp.row() == ["overhead", "2026-11-29T13:23", "not recorded", "3.6, 4.1, 4.2", "not recorded"]
    assert "(end not recorded)" in stamp.line()
    assert overlapping([stamp, stamp]) == []  # without an end nothing can be said


def test_overlapping_sections_are_named_on_the_page() -> None:
    first = Stamp("quality", "2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00", [1, 1, 1], [1, 1, 1])
    second = Stamp("tuning", "2026-12-01T10:30:00+00:00", "2026-12-01T10:40:00+00:00", [1, 1, 1], [1, 1, 1])
    after = Stamp("ingest", "2026-12-01T11:00:00+00:00", "2026-12-01T11:05:00+00:00", [1, 1, 1], [1, 1, 1])
    sections = [Section(s.section, "c", "b", stamp=s) for s in (first, second, after)]

    assert overlapping([first, second, after]) == [("quality", "tuning")]
    assert "these sections overlapped in time, so each disturbed the other: quality and tuning." in \
        run_all.render(sections, False, 0.0, assembled=True)


def test_a_second_bench_run_waits_for_the_first(tmp_path: Path) -> None:
    lock, entered = tmp_path / "bench.lock", []

    def second() -> None:
        with run_all.exclusive(lock):
            entered.append(time.monotonic())

    with run_all.exclusive(lock):
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.5)
        assert not entered
        released = time.monotonic()
    waiting.join(timeout=10)

    assert entered and entered[0] >= released


def test_the_in_process_runner_passes_only_parameters_the_pipeline_has() -> None:
    """overhead and quality run the pipeline's steps in one process from these arguments (a key the
    pipeline dropped once broke both sections, and only a benchmark run showed it)."""
    import inprocess

    from tunepipe.config.parameters import pipeline_defaults, validate_arguments

    arguments = inprocess.default_arguments()
    assert set(arguments) <= set(pipeline_defaults())
    assert validate_arguments(arguments).data.uri == arguments["data_uri"]


@pytest.mark.parametrize(("how", "whole"), [("whole", True), ("streamed", False)])
def test_the_scale_bench_can_read_one_split_both_ways(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str,
                                                     whole: bool) -> None:
    """bench/scale.py times the train step on the same split read whole and streamed; in a real run
    the split's size alone decides, so the bench forces the threshold in the step's process."""
    import inprocess
    import pandas as pd
    from split_files import write_split

    from tunepipe.data import split

    monkeypatch.setattr(split, "WHOLE_SPLIT_BYTES", split.WHOLE_SPLIT_BYTES)  # restored after the test
    written = write_split(tmp_path, pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]}))
    inprocess.force_split_read(how)
    assert written.fits_memory is whole
