"""``tunepipe serve``'s options: defaults from tunepipe.serving.settings, the pinned version from the
environment, refusals, and the one-line message when kserve is not installed."""

import builtins
from pathlib import Path

import pytest

from pipelines.cli import _parser, main, serve_settings
from tunepipe.errors import ConfigError
from tunepipe.serving import settings as defaults

pytestmark = pytest.mark.unit


def parse(*options: str):
    return _parser().parse_args(["serve", "--export-root", "models", "--model-name", "penguins", *options])


def test_defaults_come_from_the_settings_module(tmp_path: Path) -> None:
    settings = serve_settings(parse("--cache-dir", str(tmp_path)), {})
    assert settings.version is None and settings.export_root == str(Path("models").resolve())
    assert (settings.host, settings.port, settings.poll_seconds) == (
        defaults.DEFAULT_HOST, defaults.DEFAULT_PORT, defaults.DEFAULT_POLL_SECONDS)
    assert settings.limits == defaults.Limits() and settings.cache_dir == tmp_path


def test_version_from_the_option_else_the_environment() -> None:
    assert serve_settings(parse(), {"TUNEPIPE_SERVE_VERSION": "4"}).version == 4
    assert serve_settings(parse("--version", "2"), {"TUNEPIPE_SERVE_VERSION": "4"}).version == 2
    assert serve_settings(parse(), {}).export_root.endswith("models")
    assert serve_settings(_parser().parse_args(["serve", "--export-root", "gs://b/m", "--model-name", "p"]),
                          {}).export_root == "gs://b/m"
    with pytest.raises(ConfigError, match=r"\$TUNEPIPE_SERVE_VERSION: expected a version number, got 'latest'"):
        serve_settings(parse(), {"TUNEPIPE_SERVE_VERSION": "latest"})
    with pytest.raises(ConfigError, match=r"--poll-seconds: must be positive, got 0\.0"):
        serve_settings(parse("--poll-seconds", "0"), {})


def test_without_kserve_one_line_says_what_to_install(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    real_import = builtins.__import__

    def no_kserve(name: str, *args, **kwargs):
        if name == "tunepipe.serving.server" or name.startswith("kserve"):
            raise ModuleNotFoundError("No module named 'kserve'", name="kserve")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kserve)
    assert main(["serve", "--export-root", "models", "--model-name", "penguins"]) == 2
    assert capsys.readouterr().err.strip() == ("error: tunepipe serve needs KServe's model server: "
                                               "install tunepipe[serve]")
