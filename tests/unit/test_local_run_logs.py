"""The seam between kfp.local and the step logs (pipelines.local_run.run_logged), through both runners.

The subprocess runner runs real tiny components; the docker runner runs kfp.local's own
DockerTaskHandler against a fake Docker client whose container streams what a step prints, so
the path a ``--runner docker`` run takes is covered without a Docker engine.
"""


import io
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, local

from pipelines.errors import StepFailed
from pipelines.local_run import run_logged
from pipelines.step_logs import Console, RunLog

pytestmark = pytest.mark.unit


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def shout(word: str) -> str:
    print(f"shout: {word}")
    print("tunepipe: peak memory of this step: 42 MiB")
    return word.upper()


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def refuse(word: str) -> None:
    import sys

    print(f"refuse: reading {word}")
    print(f"error: no rows in {word}", file=sys.stderr)
    sys.exit(1)


@dsl.pipeline(name="logged")
def shouting(word: str) -> str:
    return shout(word=word).output


@dsl.pipeline(name="refused")
def refusing(word: str) -> None:
    refuse(word=word)


def logs(tmp_path: Path) -> tuple[RunLog, io.StringIO]:
    screen = io.StringIO()
    return RunLog(tmp_path / "logs", Console(screen)), screen


def test_subprocess_runner_steps_log_to_their_files_and_cache_hits_show(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               enable_caching=True, raise_on_error=True)
    run_log, screen = logs(tmp_path)
    task, cached = run_logged(lambda: shouting(word="penguins"), run_log)
    assert task.output == "PENGUINS" and cached == []
    assert run_log.folder is not None and run_log.folder.parent == tmp_path / "logs"
    assert run_log.folder.name in {path.name for path in (tmp_path / "root").iterdir()}  # kfp.local's run name
    step_log = (run_log.folder / "shout.log").read_text()
    assert "Executing task 'shout'" in step_log and "    shout: penguins\n" in step_log
    assert "Task 'shout' finished with status SUCCESS" in step_log and "\x1b[" not in step_log
    assert "Running pipeline: 'logged'" in (run_log.folder / "run.log").read_text()
    lines = screen.getvalue().splitlines()
    assert lines[1:] and lines[1] == "tunepipe: step 'shout' started"
    assert lines[2].startswith("tunepipe: step 'shout' done in ") and lines[2].endswith(", peak 42 MiB")
    assert len(lines) == 3

    again, screen = logs(tmp_path)
    task, cached = run_logged(lambda: shouting(word="penguins"), again)
    assert task.output == "PENGUINS" and cached == ["shout"]
    assert screen.getvalue().splitlines()[1:] == ["tunepipe: step 'shout' served from the cache"]


def test_subprocess_runner_failure_ends_with_the_steps_error_line(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    run_log, screen = logs(tmp_path)
    with pytest.raises(StepFailed) as failure:
        run_logged(lambda: refusing(word="d.csv"), run_log)
    assert run_log.folder is not None
    assert failure.value.lines == [
        "    refuse: reading d.csv",
        f"tunepipe: the whole log of step 'refuse': {run_log.folder / 'refuse.log'}",
        "error: no rows in d.csv",
    ]
    assert screen.getvalue().splitlines()[-1].startswith("tunepipe: step 'refuse' FAILED after ")


class FakeContainer:
    def __init__(self, lines: list[str], status: int) -> None:
        self.lines, self.status = lines, status

    def logs(self, stream: bool) -> Any:
        return iter(f"{line}\n".encode() for line in self.lines)

    def wait(self) -> dict[str, int]:
        return {"StatusCode": self.status}


class FakeDocker:
    """The few calls kfp.local's DockerTaskHandler makes; the container prints ``lines``."""

    def __init__(self, lines: list[str], status: int) -> None:
        self.container = FakeContainer(lines, status)
        self.images = self
        self.containers = self
        self.run_args: dict[str, Any] = {}

    def info(self) -> dict[str, Any]:
        return {}

    def list(self) -> list[Any]:
        image = type("Image", (), {"tags": ["python:3.11"], "attrs": {"RepoDigests": []}})
        return [image]

    def run(self, **kwargs: Any) -> FakeContainer:
        self.run_args = kwargs
        return self.container

    def close(self) -> None:
        pass


@pytest.mark.parametrize("status", [0, 1], ids=["succeeds", "fails"])
def test_docker_runner_output_goes_to_the_step_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   status: int) -> None:
    import docker

    lines = ["\x1b[1mrefuse: reading d.csv\x1b[0m", *[f"refuse: line {n}" for n in range(30)],
             *(["error: no rows in d.csv"] if status else [])]
    fake = FakeDocker(lines, status)
    monkeypatch.setattr(docker, "from_env", lambda: fake)
    local.init(runner=local.DockerRunner(), pipeline_root=str(tmp_path / "root"), raise_on_error=True)
    run_log, screen = logs(tmp_path)
    if status:
        with pytest.raises(StepFailed) as failure:
            run_logged(lambda: refusing(word="d.csv"), run_log)
        assert failure.value.lines[-1] == "error: no rows in d.csv"
        assert failure.value.lines[:-2] == [f"    refuse: line {n}" for n in range(10, 30)]
    else:
        run_logged(lambda: refusing(word="d.csv"), run_log)
        assert screen.getvalue().splitlines()[-1].startswith("tunepipe: step 'refuse' done in ")
    assert fake.run_args["image"] == "python:3.11"  # kfp.local's DockerTaskHandler really ran
    assert run_log.folder is not None
    step_log = (run_log.folder / "refuse.log").read_text()
    assert "Found image 'python:3.11'" in step_log and "    refuse: reading d.csv\n" in step_log
    assert "\x1b[" not in step_log
    assert len(screen.getvalue().splitlines()) == 3  # logs folder, started, done or FAILED
