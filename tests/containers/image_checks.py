"""Helpers the containers-tier tests share: is Docker there, what does an image hold."""

import json
import subprocess
from typing import Any

from credential_checks import KEY_FILE, SECRET_TEXT  # tests/ is on sys.path (tests/conftest.py)

from tunepipe.identity import IMAGE_UID

IMAGE_USER = f"{IMAGE_UID}:{IMAGE_UID}"
# Where the project's own files end up in the image (the rest is Debian and PyPI packages).
PROJECT_PATHS = [f"/opt/venv/lib/python3.11/site-packages/{package}" for package in ("tunepipe", "components",
                                                                                      "pipelines")]
PROJECT_PATHS += ["/home/tunepipe", "/usr/local/bin", "/src"]


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def inspect(image: str) -> dict[str, Any]:
    """``docker image inspect`` of ``image``."""
    return json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                     check=True).stdout)[0]


def build_steps(image: str) -> list[str]:
    """The CREATED BY column of ``docker history --no-trunc``: one line per build step."""
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                             capture_output=True, text=True, check=True)
    return history.stdout.splitlines()


def environment(image: str) -> dict[str, str]:
    """The image's ENV settings as a mapping."""
    return dict(entry.partition("=")[::2] for entry in inspect(image)["Config"]["Env"] or [])


def key_files(image: str, paths: list[str]) -> list[str]:
    """Files under ``paths`` in ``image`` named like credentials or holding key material."""
    script = 'for p in "$@"; do [ -e "$p" ] && find "$p" -type f; done; exit 0'
    listing = _run_in(image, ["sh", "-c", script, "sh", *paths])
    named = [path for path in listing.splitlines() if KEY_FILE.search(path)]
    grep = _run_in(image, ["sh", "-c", 'for p in "$@"; do [ -e "$p" ] && grep -rlIE -e "$0" "$p"; done; exit 0',
                           SECRET_TEXT.pattern, *paths])
    return named + grep.splitlines()


def _run_in(image: str, command: list[str]) -> str:
    run = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", command[0], image,
                          *command[1:]], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout
