"""The model server image (docker/serve.Dockerfile): ``tunepipe serve`` in a container, as KServe runs it.

Built FROM the project image of conftest.py's ``image`` fixture; served read-only, as uid 10001,
with a read-only root file system and a tmpfs /tmp, like k8s/serving's InferenceService.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from serving_models import CLASSES, publish  # tests/ is on sys.path (rootdir conftest)

import tunepipe
from tunepipe.execution.tuner_processes import LOOPBACK, free_port

pytestmark = pytest.mark.containers
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 180.0


def _build(image: str) -> str:
    name, _, version = image.rpartition(":")
    tag = f"{name}-serve:{version}"
    command = ["docker", "build", "-f", "docker/serve.Dockerfile", "--build-arg", f"PIPELINE_IMAGE={image}",
               "--build-arg", f"VERSION={tunepipe.__version__}", "-t", tag, "."]
    build = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return tag


def _wait_ready(url: str, container: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
    raise AssertionError(f"{url} not ready after {READY_TIMEOUT:.0f} s:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def test_the_serve_image_serves_a_published_model_over_http(image: str, tmp_path: Path) -> None:
    tag = _build(image)
    models = tmp_path / "models"
    (models / "penguins").mkdir(parents=True)
    publish(models / "penguins", 1)
    for path in models.rglob("*"):  # readable by the image's user, whoever wrote it
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    port = free_port()
    started = subprocess.run(
        ["docker", "run", "-d", "--read-only", "--tmpfs", "/tmp", "-p", f"{LOOPBACK}:{port}:8080",
         "-v", f"{models}:/models:ro", tag, "tunepipe", "serve", "--host", "0.0.0.0", "--export-root", "/models",
         "--model-name", "penguins"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        url = f"http://{LOOPBACK}:{port}/v1/models/penguins"
        _wait_ready(url, container)
        answer = requests.post(f"{url}:predict", json={"instances": [{"bill_length_mm": None, "island": "Dream"}]},
                               timeout=30)
        assert answer.status_code == 200, answer.text
        [prediction] = answer.json()["predictions"]
        assert prediction["predicted_class"] in CLASSES and abs(sum(prediction["probabilities"]) - 1) < 1e-5
        refused = requests.post(f"{url}:predict", json={"instances": [{"bill_length_mm": "long"}]}, timeout=30)
        assert refused.status_code == 400 and "bill_length_mm" in refused.json()["error"]
        user = subprocess.run(["docker", "exec", container, "id", "-u"], capture_output=True, text=True, timeout=60)
        assert user.stdout.strip() == "10001"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=120)
