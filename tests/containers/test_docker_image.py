"""The project image built from docker/, and the whole pipeline run in it through DockerRunner.

The image is built by the ``image`` fixture in conftest.py (skipped without Docker, failed with CI=true).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from image_checks import IMAGE_USER, inspect  # pytest puts this folder on sys.path

import tunepipe
from tunepipe import artifacts
from tunepipe.publishing import layout

pytestmark = pytest.mark.containers

TINY_CONFIG = {
    "tuning": {"max_epochs": 2, "patience": 1},
    "search_space": {"hidden_layers": {"min": 1, "max": 1}, "units": {"min": 8, "max": 16, "step": 8},
                     "batch_size": [32]},
    "training": {"max_epochs": 5, "patience": 2},
}


def test_image_runs_as_non_root_with_version_labels(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["User"] == IMAGE_USER
    assert config["Labels"]["org.opencontainers.image.version"] == tunepipe.__version__
    whoami = subprocess.run(["docker", "run", "--rm", image, "python", "-c",
                             "import os, tunepipe; print(os.getuid(), tunepipe.__version__)"],
                            capture_output=True, text=True, timeout=300)
    assert whoami.stdout.split() == ["10001", tunepipe.__version__], whoami.stderr


def test_docker_runner_runs_steps_with_a_read_only_root() -> None:
    from pipelines.local_run import docker_runner

    settings = docker_runner([]).container_run_args
    assert settings["read_only"] is True and "/tmp" in settings["tmpfs"]
    assert settings["user"].startswith("10001:")


def test_whole_pipeline_runs_in_the_image_through_docker_runner(image: str, tmp_path: Path) -> None:
    """Every step in its own container with a read-only root (see the test above) and a tmpfs /tmp."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--runner", "docker", "--image", image,
         "--config", "tiny.yaml", "--output", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "runner docker" in result.stdout
    assert len(result.stdout.splitlines()) <= 40, result.stdout  # a line per step; kfp.local's output is filed
    logs = Path(re.search(r"^tunepipe: step logs in (\S+)$", result.stdout, re.MULTILINE).group(1))
    assert "Found image" in (logs / "ingest.log").read_text()  # the docker runner's stream, in the step's log
    version_dir = tmp_path / "out" / "models" / "penguins" / "1"
    card = json.loads((version_dir / layout.MODEL_CARD).read_text())
    assert card["verification"]["max_abs_difference"] <= 1e-5
    assert (version_dir / layout.SAVED_MODEL_PB).is_file()
    # The steps really ran in containers, as the image's non-root user, writing the mounted folders.
    assert version_dir.stat().st_uid == 10001
    tuner_state = list((tmp_path / "out" / "tuner" / "penguins").glob("*/hyperband/trial_*/trial.json"))
    assert tuner_state, "the tuner root is mounted: the search state outlives the container"
    written = list((tmp_path / "out" / "pipeline_root").rglob(artifacts.CLEANED_DATA_FILE))
    assert written and all(path.stat().st_uid == 10001 for path in written)
