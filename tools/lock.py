"""Lock files of the images' dependencies: ``docker/requirements-<name>.lock``, fully pinned with hashes.

Each lock covers ``[project].dependencies`` plus the extras of one image (:data:`LOCKS`: the CPU
and GPU pipeline images, and the model server image, which adds ``serve`` to ``cpu``) of
pyproject.toml, resolved for Python 3.11 on Linux. Its header records a SHA-256 of those
requirement lists, so a stale lock is found by hashing pyproject again (the unit test does).

    python tools/lock.py --uv PATH_TO_UV      # what `make lock` runs
"""

import argparse
import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
# Lock name -> the extras it covers besides [project].dependencies: one lock per image.
LOCKS: dict[str, tuple[str, ...]] = {"cpu": ("cpu",), "gpu": ("gpu",), "serve": ("cpu", "serve")}
LOCKED_EXTRAS = tuple(LOCKS)
INPUTS_PREFIX = "# inputs-sha256: "
PYTHON_VERSION = "3.11"
PLATFORM = "linux"


def lock_path(name: str) -> Path:
    """The lock file ``name`` (a key of :data:`LOCKS`)."""
    return ROOT / "docker" / f"requirements-{name}.lock"


def lock_inputs(pyproject: Path, name: str) -> list[str]:
    """The requirement strings lock ``name`` covers: ``[project].dependencies`` and its extras
    (:data:`LOCKS`; a name not there stands for the one extra of that name).

    Raises:
        KeyError: pyproject declares no optional-dependency group of that name.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements = list(project["dependencies"])
    for extra in LOCKS.get(name, (name,)):
        if extra not in extras:
            raise KeyError(f"pyproject.toml has no extra {extra!r} (has: {', '.join(sorted(extras))})")
        requirements += extras[extra]
    return requirements


def inputs_sha256(requirements: list[str]) -> str:
    """SHA-256 of the requirement strings, one a line, in order: changes whenever a lock must."""
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()


def recorded_sha256(lock_text: str) -> str | None:
    """The inputs hash a lock file's header records, or None if it records none."""
    for line in lock_text.splitlines():
        if line.startswith(INPUTS_PREFIX):
            return line.removeprefix(INPUTS_PREFIX).strip()
    return None


def compile_lock(uv: str, extra: str) -> str:
    """Resolves the inputs of ``extra`` with ``uv pip compile --generate-hashes``; returns the lock's text."""
    requirements = lock_inputs(PYPROJECT, extra)
    resolved = subprocess.run(
        [uv, "pip", "compile", "--generate-hashes", "--no-header", "--quiet",
         "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM, "-"],
        input="\n".join(requirements), capture_output=True, text=True, check=False,
    )
    if resolved.returncode:
        raise RuntimeError(f"uv pip compile failed for the {extra!r} extra:\n{resolved.stderr}")
    covered = " + ".join(f"the {name!r} extra" for name in LOCKS.get(extra, (extra,)))
    header = (
        f"# The {extra} image's dependencies: [project].dependencies + {covered} of pyproject.toml,\n"
        f"# resolved for Python {PYTHON_VERSION} on {PLATFORM} by `make lock` (tools/lock.py, uv pip compile).\n"
        "# Do not edit: change pyproject.toml and run `make lock`; tests/unit/test_lock_files.py fails until then.\n"
        f"{INPUTS_PREFIX}{inputs_sha256(requirements)}\n"
    )
    return header + resolved.stdout


def main(argv: list[str] | None = None) -> int:
    """Rewrites every lock file; returns the exit status."""
    parser = argparse.ArgumentParser(description="Regenerate docker/requirements-<extra>.lock from pyproject.toml.")
    parser.add_argument("--uv", default="uv", help="the uv executable (default: uv on PATH)")
    args = parser.parse_args(argv)
    for extra in LOCKED_EXTRAS:
        lock_path(extra).write_text(compile_lock(args.uv, extra))
        print(f"wrote {lock_path(extra).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
