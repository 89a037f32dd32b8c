"""``tunepipe run --runner docker`` without the ``docker`` package: one line naming the extra."""

from __future__ import annotations

import builtins
import sys

import pytest

from pipelines.cli import main

pytestmark = pytest.mark.unit


def test_runner_docker_without_the_package_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # `import docker` now fails as if not installed
    monkeypatch.setitem(sys.modules, "docker.types", None)
    (tmp_path / "d.csv").write_text("x,y\n1,a\n2,b\n")

    status = main(["run", "--data", str(tmp_path / "d.csv"), "--label", "y", "--runner", "docker",
                   "--output", str(tmp_path / "out")])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.strip() == 'error: --runner docker needs the docker package: pip install "tunepipe[docker]"'
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "out" / "pipeline_root").exists()  # refused before anything ran


def test_an_unrelated_missing_module_is_not_blamed_on_the_extra(monkeypatch) -> None:
    from pipelines import local_run

    real_import = builtins.__import__

    def broken_import(name: str, *args, **kwargs):
        if name == "docker.types":
            raise ModuleNotFoundError("No module named 'paramiko'", name="paramiko")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken_import)
    with pytest.raises(ModuleNotFoundError, match="paramiko"):
        local_run.docker_runner([])
