"""Least privilege in the image: real work with a read-only root filesystem, and no credentials anywhere.

The image is the one the ``image`` fixture (conftest.py) builds for the whole tier. Each credential
detector is also run on a deliberately leaky image and a build context with planted key files, so
the checks on the real image can fail.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from credential_checks import assignment_findings, history_findings  # tests/ is on sys.path (tests/conftest.py)
from image_checks import PROJECT_PATHS, build_steps, environment, inspect, key_files

from tunepipe.publishing import layout

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
# A whole run, small enough to take about two minutes: Hyperband with max_epochs 2 (2 trials),
# training at most 2 epochs, no cross-validation.
TINY_CONFIG = {
    "tuning": {"max_epochs": 2, "patience": 1},
    "search_space": {"hidden_layers": {"min": 1, "max": 1}, "units": {"min": 8, "max": 16, "step": 8},
                     "batch_size": [32]},
    "training": {"max_epochs": 2, "patience": 1},
    "evaluation": {"cv_folds": 0},
}
# Written only from parts, so this file itself holds nothing a scanner would flag.
FAKE_PEM = "-----BEGIN " + "PRIVATE KEY-----\nMIIEfake\n-----END " + "PRIVATE KEY-----\n"
FAKE_SERVICE_ACCOUNT = json.dumps({"type": "service_account", "private_key": FAKE_PEM})


def read_only_run(image: str, out: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in ``image`` as uid 10001 with a read-only root, a tmpfs /tmp and ``out`` at /out."""
    return subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001", "--network", "none",
         "-v", f"{out}:/out", image, "sh", "-c", command],
        capture_output=True, text=True, timeout=900,
    )


def test_whole_run_works_with_a_read_only_root_filesystem(image: str, tmp_path: Path) -> None:
    """`tunepipe run` (all steps through kfp.local, export included) inside one read-only container."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the container's user writes it
    (out / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    # The working directory belongs to uid 10001: failing to write it proves the root is read-only.
    # The run may write /tmp and /out only; anything else fails it.
    result = read_only_run(image, out, "! touch $PWD/probe 2>/dev/null && tunepipe run --config /out/tiny.yaml"
                                        " --output /out")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    version_dir = out / "models" / "penguins" / "1"
    card = json.loads((version_dir / layout.MODEL_CARD).read_text())
    assert card["verification"]["max_abs_difference"] <= 1e-5
    assert (version_dir / layout.SAVED_MODEL_PB).is_file()
    assert version_dir.stat().st_uid == 10001


def test_scratch_settings_point_at_tmp(image: str) -> None:
    settings = environment(image)
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "KERAS_HOME", "MPLCONFIGDIR"):
        assert settings[name].startswith("/tmp"), f"{name}={settings[name]} is not under the /tmp scratch"


def credential_findings_of(image: str, paths: list[str]) -> list[str]:
    config = inspect(image)["Config"]
    return (assignment_findings(environment(image), "ENV") + assignment_findings(config["Labels"] or {}, "LABEL")
            + history_findings(build_steps(image)) + [f"file {path}" for path in key_files(image, paths)])


def test_image_holds_no_credentials(image: str) -> None:
    assert credential_findings_of(image, PROJECT_PATHS) == []


def test_credential_checks_catch_a_leaky_image(image: str, tmp_path: Path) -> None:
    (tmp_path / "sa-key.json").write_text(FAKE_SERVICE_ACCOUNT)
    (tmp_path / "notes.txt").write_text("deploy with\n" + FAKE_PEM)
    dockerfile = (f"FROM {image}\n"
                  "ARG GITHUB_TOKEN=ghp_" + "0123456789abcdefghijABCDEFGHIJ012345\n"
                  "RUN echo using the token\n"
                  "ENV DB_PASSWORD=hunter2 GOOGLE_APPLICATION_CREDENTIALS=/app/sa-key.json\n"
                  "LABEL ci.api_key=abc123\n"
                  "COPY sa-key.json /app/sa-key.json\n"
                  "COPY notes.txt /app/notes.txt\n")
    leaky = f"{image}-leaky-probe"
    build = subprocess.run(["docker", "build", "-q", "-t", leaky, "-f", "-", str(tmp_path)], input=dockerfile,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    try:
        findings = "\n".join(credential_findings_of(leaky, ["/app"]))
    finally:
        subprocess.run(["docker", "image", "rm", "-f", leaky], capture_output=True, check=False)
    for planted in ("ENV DB_PASSWORD", "ENV GOOGLE_APPLICATION_CREDENTIALS", "LABEL ci.api_key",
                    "sets GITHUB_TOKEN", "copies /app/sa-key.json", "file /app/sa-key.json", "file /app/notes.txt"):
        assert planted in findings, f"{planted!r} not found in:\n{findings}"


PLANTED = ["credentials.json", ".env", "secrets/token.txt", "src/tunepipe/sa-key.json", "src/.env.production",
           "components/id_rsa", "pipelines/tls.pem", "src/tunepipe/service-account.json", ".netrc"]


def test_dockerignore_keeps_credential_files_out_of_the_build_context(image: str, tmp_path: Path) -> None:
    """The real .dockerignore, applied by Docker itself to a context with planted key files."""
    context = tmp_path / "context"
    for name in [*PLANTED, "src/tunepipe/modelling/model.py", "pyproject.toml"]:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(FAKE_SERVICE_ACCOUNT if name.endswith(".json") else "x = 1\n")
    (context / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    probe = f"{image}-context-probe"
    build = subprocess.run(["docker", "build", "-q", "-t", probe, "-f", "-", str(context)],
                           input=f"FROM {image}\nCOPY . /context/\n", capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    try:
        listing = subprocess.run(["docker", "run", "--rm", "--entrypoint", "find", probe, "/context", "-type", "f"],
                                 capture_output=True, text=True, check=True).stdout.split()
    finally:
        subprocess.run(["docker", "image", "rm", "-f", probe], capture_output=True, check=False)
    copied = sorted(os.path.relpath(path, "/context") for path in listing)
    assert copied == ["pyproject.toml", "src/tunepipe/modelling/model.py"]  # the allowlist still lets source in
