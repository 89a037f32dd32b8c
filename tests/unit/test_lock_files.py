"""The image lock files (docker/requirements-<extra>.lock) match pyproject.toml: `make lock` after any change."""

import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_TOOL = Path(__file__).resolve().parents[2] / "tools" / "lock.py"
_spec = importlib.util.spec_from_file_location("lock_tool", _TOOL)
assert _spec and _spec.loader
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", re.MULTILINE)
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(lock_text: str) -> dict[str, str]:
    """{canonical name: version} of every ``name==version`` entry of a hashed lock."""
    return {canonical(name): version for name, version in PIN.findall(lock_text)}


@pytest.mark.parametrize("extra", lock.LOCKED_EXTRAS)
def test_lock_records_the_hash_of_the_current_pyproject(extra: str) -> None:
    recorded = lock.recorded_sha256(lock.lock_path(extra).read_text())
    expected = lock.inputs_sha256(lock.lock_inputs(lock.PYPROJECT, extra))
    assert recorded == expected, (
        f"{lock.lock_path(extra).name} was made from other dependencies than pyproject.toml declares "
        f"(recorded inputs {recorded}, now {expected}): run `make lock` and commit the lock files"
    )


@pytest.mark.parametrize("extra", lock.LOCKED_EXTRAS)
def test_every_covered_dependency_is_pinned_with_hashes(extra: str) -> None:
    text = lock.lock_path(extra).read_text()
    versions = pinned(text)
    declared = {canonical(NAME.match(requirement)[1]) for requirement in lock.lock_inputs(lock.PYPROJECT, extra)}
    assert declared - set(versions) == set(), f"not pinned in {lock.lock_path(extra).name}: run `make lock`"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text[text.index("\n", text.index(lock.INPUTS_PREFIX)) + 1:])
    unhashed = [entry.split("==")[0] for entry in entries if "--hash=sha256:" not in entry]
    assert unhashed == [], f"entries without hashes (pip --require-hashes refuses them): {unhashed}"


def test_inputs_hash_changes_with_any_requirement() -> None:
    assert lock.inputs_sha256(["keras>=3.10,<4"]) != lock.inputs_sha256(["keras>=3.11,<4"])
    assert lock.recorded_sha256("absl-py==2.5.1 \\\n") is None


def test_an_unknown_extra_is_named() -> None:
    with pytest.raises(KeyError, match="no extra 'tpu'"):
        lock.lock_inputs(lock.PYPROJECT, "tpu")
