"""What ``tunepipe run`` prints and what it files away (pipelines.step_logs, pipelines.step_results).

kfp.local's output is simulated here line for line (timestamps, colours, the executor's input
echo, the 4-space indent of streamed step output); tests/unit/test_local_run_logs.py drives the
real kfp.local through both runners.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.step_logs import TAIL_LINES, Console, RunLog, TrialProgress, strip_ansi
from pipelines.step_results import step_result

pytestmark = pytest.mark.unit

CYAN, GREEN, RED, RESET = "\x1b[96m", "\x1b[92m", "\x1b[91m", "\x1b[0m"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def kfp_task_output(step: str, own_lines: list[str], status: str = "SUCCESS") -> list[str]:
    """What kfp.local prints for a task, as it prints it (colours, the executor input, the indent)."""
    return [
        f"23:04:58.433 - INFO - Executing task {CYAN}'{step}'{RESET}\n",
        "23:04:58.433 - INFO - Streamed logs:\n\n",
        "    ", f"[KFP Executor 2026-11-29 23:04:58,516 INFO]: Looking for component `{step}`\n",
        "    ", "[KFP Executor 2026-11-29 23:04:58,517 INFO]: Got executor_input:\n",
        "    ", "{\n", "    ", '    "inputs": {\n', "    ", '        "label": "species"\n', "    ", "    }\n",
        "    ", "}\n",
        *[part for line in own_lines for part in ("    ", line + "\n")],
        "    ", "\n\n",
        f"23:04:59.000 - INFO - Task {CYAN}'{step}'{RESET} finished with status "
        f"{GREEN if status == 'SUCCESS' else RED}{status}{RESET}\n",
        "-" * 80 + "\n",
    ]


def run_log(tmp_path: Path, verbose: bool = False, console: io.StringIO | None = None) -> RunLog:
    return RunLog(tmp_path / "logs", Console(console if console is not None else io.StringIO()), verbose)


def test_colour_codes_are_stripped() -> None:
    line = f"Task {CYAN}'ingest'{RESET} finished with status {GREEN}SUCCESS{RESET}"
    assert strip_ansi(line) == "Task 'ingest' finished with status SUCCESS"


def test_the_screen_keeps_colours_only_on_a_terminal() -> None:
    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        Console(stream).echo(f"{GREEN}SUCCESS{RESET}\n")
    assert piped.getvalue() == "SUCCESS\n"
    assert terminal.getvalue() == f"{GREEN}SUCCESS{RESET}\n"


def test_each_step_has_its_own_file_and_the_screen_a_line_as_it_starts_and_ends(tmp_path: Path) -> None:
    screen = io.StringIO()
    log = run_log(tmp_path, console=screen)
    with log.capturing():
        print("before the run has a name")
        log.open("tunepipe-1")
        logging.getLogger().warning("kfp.local, outside any task")
        with log.step("ingest") as step:
            own = ["ingest: reading d.csv", "tunepipe: peak memory of this step: 81 MiB"]
            for text in kfp_task_output("ingest", own):
                sys.stdout.write(text)
            print("a warning", file=sys.stderr)
            log.finished(step, True, "344 rows after cleaning")
        log.cached("preprocess")
    folder = tmp_path / "logs" / "tunepipe-1"
    ingest = (folder / "ingest.log").read_text()
    assert "23:04:58.433 - INFO - Executing task 'ingest'\n" in ingest and "\x1b" not in ingest
    assert "    ingest: reading d.csv\n" in ingest and '        "label": "species"\n' in ingest
    assert ingest.endswith("Task 'ingest' finished with status SUCCESS\n" + "-" * 80 + "\na warning\n")
    run = (folder / "run.log").read_text()
    assert run.splitlines() == ["before the run has a name", "WARNING:root:kfp.local, outside any task",
                                "tunepipe: step 'preprocess' served from the cache"]
    lines = screen.getvalue().splitlines()
    assert lines[0] == f"tunepipe: step logs in {folder}"
    assert lines[1] == "tunepipe: step 'ingest' started"
    assert lines[2].startswith("tunepipe: step 'ingest' done in ")
    assert lines[2].endswith(" s, peak 81 MiB: 344 rows after cleaning")
    assert lines[3:] == ["tunepipe: step 'preprocess' served from the cache"]
    assert log.folder == folder


def test_verbose_echoes_everything_without_colours_off_a_terminal(tmp_path: Path) -> None:
    screen = io.StringIO()
    log = run_log(tmp_path, verbose=True, console=screen)
    with log.capturing():
        log.open("tunepipe-1")
        with log.step("ingest") as step:
            for text in kfp_task_output("ingest", ["ingest: reading d.csv"]):
                sys.stdout.write(text)
            log.finished(step, True, "344 rows")
    folder = tmp_path / "logs" / "tunepipe-1"
    shown = screen.getvalue()
    assert shown == f"tunepipe: step logs in {folder}\n" + strip_ansi(
        "".join(kfp_task_output("ingest", ["ingest: reading d.csv"])))
    assert shown.split("\n", 1)[1] == (folder / "ingest.log").read_text()


def test_a_failed_step_ends_with_its_last_lines_its_log_and_its_error_line(tmp_path: Path) -> None:
    screen = io.StringIO()
    log = run_log(tmp_path, console=screen)
    own = [f"ingest: line {number}" for number in range(30)]
    error = "error: label column 'wingspan' not found"
    with log.capturing():
        log.open("tunepipe-1")
        with log.step("ingest") as step:
            for text in kfp_task_output("ingest", [*own, error, "tunepipe: peak memory of this step: 90 MiB"],
                                        status="FAILURE"):
                sys.stdout.write(text)
            log.finished(step, False)
    lines = log.failure_lines()
    path = tmp_path / "logs" / "tunepipe-1" / "ingest.log"
    assert lines[-1] == error
    assert lines[-2] == f"tunepipe: the whole log of step 'ingest': {path}"
    tail = lines[:-2]
    assert len(tail) == TAIL_LINES
    assert tail == [f"    {line}" for line in [*own, "tunepipe: peak memory of this step: 90 MiB"][-TAIL_LINES:]]
    assert screen.getvalue().splitlines()[-1].startswith("tunepipe: step 'ingest' FAILED after ")
    assert error in path.read_text()  # the file keeps everything, the error line included


def test_a_short_failure_shows_only_the_steps_own_lines(tmp_path: Path) -> None:
    """The executor's input echo, kfp.local's lines and blank lines are not the step's: left out."""
    log = run_log(tmp_path)
    with log.capturing():
        log.open("tunepipe-1")
        with log.step("ingest") as step:
            for text in kfp_task_output("ingest", ["ingest: reading d.csv", "error: d.csv: no data rows"], "FAILURE"):
                sys.stdout.write(text)
            log.finished(step, False)
    assert log.failure_lines()[0] == "    ingest: reading d.csv"
    assert len(log.failure_lines()) == 3


def test_a_step_that_raises_is_reported_with_the_exception(tmp_path: Path) -> None:
    log = run_log(tmp_path)
    with pytest.raises(ConnectionError), log.capturing():
        log.open("tunepipe-1")
        with log.step("tune"):
            raise ConnectionError("the docker daemon is not running")
    assert log.failure_lines()[-1] == "error: step 'tune' failed: ConnectionError: the docker daemon is not running"


def test_verbose_failure_skips_the_tail_already_on_screen(tmp_path: Path) -> None:
    log = run_log(tmp_path, verbose=True)
    with log.capturing():
        log.open("tunepipe-1")
        with log.step("ingest") as step:
            print("    ingest: reading d.csv\n    error: no rows")
            log.finished(step, False)
    assert [line.split(":")[0] for line in log.failure_lines()] == ["tunepipe", "error"]


def test_steps_on_two_threads_keep_their_own_files(tmp_path: Path) -> None:
    log = run_log(tmp_path)
    start = threading.Barrier(2)

    def step(name: str) -> None:
        with log.step(name) as running:
            start.wait()
            for number in range(200):
                print(f"{name} {number}")
            log.finished(running, True)

    with log.capturing():
        log.open("tunepipe-1")
        threads = [threading.Thread(target=step, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for name in ("a", "b"):
        assert (tmp_path / "logs" / "tunepipe-1" / f"{name}.log").read_text().splitlines() == [
            f"{name} {number}" for number in range(200)]


def trial_lines(total: int | None, objective: str = "val_loss", scores: list[float] | None = None) -> list[str]:
    count = total or 12
    scores = scores or [1.0 / (number + 1) for number in range(count)]
    return [f"    tune: trial {number:04d}{f' ({number + 1}/{total} scheduled)' if total else ''} completed, "
            f"{objective}={scores[number]:.4f}, 2 epochs" for number in range(count)]


def test_tuning_progress_takes_a_few_lines_however_many_trials() -> None:
    progress = TrialProgress()
    shown = [line for text in trial_lines(23) if (line := progress.line(text))]
    assert len(shown) == 4
    assert shown[-1] == "23/23 trials done, best val_loss 0.0435"
    assert [line.split()[0] for line in shown] == ["6/23", "12/23", "18/23", "23/23"]
    assert TrialProgress().line("    tune: trial 0001 started") is None


def test_tuning_progress_counts_failures_and_maximises_accuracy() -> None:
    progress = TrialProgress()
    lines = trial_lines(2, "val_accuracy", [0.5, 0.8])
    lines[1] = lines[1].replace("completed", "failed").replace("0.8000", "n/a")
    shown = [line for text in lines if (line := progress.line(text))]
    assert shown == ["1/2 trials done, best val_accuracy 0.5000",
                     "2/2 trials done (1 failed), best val_accuracy 0.5000"]
    progress = TrialProgress()
    assert [progress.line(text) for text in trial_lines(2, "val_accuracy", [0.5, 0.8])][-1].endswith("0.8000")


def test_tuning_progress_of_workers_without_a_schedule_count() -> None:
    progress = TrialProgress()
    shown = [line for text in trial_lines(None) if (line := progress.line(f"[worker-0] {text.strip()}"))]
    assert [line.split()[0] for line in shown] == ["5", "10"]


def artifact(**metadata: object) -> SimpleNamespace:
    return SimpleNamespace(metadata=metadata)


def test_each_steps_key_result_from_its_outputs() -> None:
    assert step_result("fingerprint", {"Output": "sha256:f204db2c753b0937caac3cb3"}) == "sha256:f204db2c753b"
    assert step_result("ingest", {"cleaned_data": artifact(rows=344.0, task="classification", drift_findings=0.0)}) \
        == "344 rows after cleaning, classification"
    assert step_result("preprocess", {f"{split}_data": artifact(rows=rows) for split, rows in
                                      (("train", 240.0), ("validation", 52.0), ("test", 52.0))}) \
        == "train 240, validation 52, test 52 rows"
    assert step_result("tune", {"best_hyperparameters": artifact(trials=23.0, best_score=0.0412, failed_trials=1.0,
                                                                  resumed_trials=0.0)}) \
        == "23 trials (1 failed), best score 0.0412"
    assert step_result("train", {"model": artifact(epochs_trained=20.0, best_epoch=10.0, best_val_loss=0.03,
                                                   resumed_from_epoch=0.0)}) \
        == "20 epochs, best epoch 10 (val_loss 0.0300)"
    assert step_result("evaluate", {"evaluation": artifact(accuracy=0.96, f1=0.95),
                                    "blessing": artifact(blessed=False, published=True)}) \
        == "test accuracy 0.9600; NOT blessed, exported anyway (force_export)"
    assert step_result("evaluate", {"evaluation": artifact(accuracy=0.96, accuracy_ci_low=0.9, accuracy_ci_high=1.0),
                                    "blessing": artifact(blessed=True, published=True)}) \
        == "test accuracy 0.9600 (95% CI 0.9000 to 1.0000); blessed"
    assert step_result("export", {"published_model": artifact(model_name="penguins", version=3.0)}) \
        == "published penguins version 3"


def test_a_missing_or_odd_output_gives_no_result_rather_than_a_failure() -> None:
    assert step_result("ingest", {}) == ""
    assert step_result("train", {"model": artifact(epochs_trained="many")}) == ""
    assert step_result("validate", {}) == ""


def test_a_crash_without_an_error_line_ends_with_the_traceback_and_a_generic_error(tmp_path: Path) -> None:
    log = run_log(tmp_path)
    traceback = ["Traceback (most recent call last):", '  File "train.py", line 3, in fit',
                 "ValueError: shapes (3,) and (4,) not aligned"]
    with log.capturing():
        log.open("tunepipe-1")
        with log.step("train") as step:
            for text in kfp_task_output("train", ["train: precision policy float32", *traceback], "FAILURE"):
                sys.stdout.write(text)
            log.finished(step, False)
    lines = log.failure_lines()
    assert lines[-1] == "error: step 'train' failed"
    assert lines[-3] == "    ValueError: shapes (3,) and (4,) not aligned"
    assert lines[0] == "    train: precision policy float32"


def test_what_comes_before_the_run_is_named_is_shown_if_the_run_never_starts(tmp_path: Path) -> None:
    screen = io.StringIO()
    log = run_log(tmp_path, console=screen)
    with pytest.raises(ValueError), log.capturing():
        print("a warning while compiling")
        raise ValueError("no pipeline")
    assert screen.getvalue() == "a warning while compiling\n"
    assert not (tmp_path / "logs").exists()
