"""The project image, built once per session for every containers-tier module.

Needs a Docker engine. Without one the tier skips, except with CI=true, where it must run.
The base image comes from TUNEPIPE_BASE_IMAGE (default python:3.11-slim; .ci/run sets
localbase/python:3.11 because no registry is reachable there). TUNEPIPE_TEST_IMAGE names the
tag to build (default tunepipe:<version>), so sessions sharing one Docker engine keep theirs apart.
"""

import os
import subprocess
from pathlib import Path

import pytest
from image_checks import docker_answers  # pytest puts this folder on sys.path

import tunepipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def image() -> str:
    """Builds the CPU image from the working tree (Docker's layer cache makes re-runs quick)."""
    if not docker_answers():
        reason = "no Docker engine answers (start one with ../shared/tools/docker-up.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true: the containers tier must run in CI")
        pytest.skip(reason)
    tag = os.environ.get("TUNEPIPE_TEST_IMAGE", f"tunepipe:{tunepipe.__version__}")
    base = os.environ.get("TUNEPIPE_BASE_IMAGE", "python:3.11-slim")
    build = subprocess.run(
        ["make", "image", f"BASE_IMAGE={base}", f"IMAGE={tag}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return tag
