"""The architecture's rules, checked on the source: arrows point down only."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Top-level package names each Python file under ``folder`` imports."""
    found: dict[str, set[str]] = {}
    for source in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(source.relative_to(ROOT))] = names
    return found


def test_core_never_imports_kfp_components_or_pipelines() -> None:
    offenders = {
        path: sorted(names & {"kfp", "components", "pipelines"})
        for path, names in imported_modules(ROOT / "src" / "tunepipe").items()
        if names & {"kfp", "components", "pipelines"}
    }
    assert offenders == {}


def test_components_never_import_pipelines() -> None:
    offenders = [path for path, names in imported_modules(ROOT / "components").items() if "pipelines" in names]
    assert offenders == []


# The distributed launcher hands its own environment (PATH, the pod's credentials) on to the
# chief and worker processes it starts, plus Keras Tuner's variables; it reads no setting from it.
ENVIRONMENT_PASSED_TO_CHILDREN = {"src/tunepipe/modelling/distributed.py": "env = {**os.environ, **extra_env"}


def test_core_reads_no_environment() -> None:
    """Configuration comes in as arguments, never from the environment."""
    readers = []
    for path in (ROOT / "src" / "tunepipe").rglob("*.py"):
        text, name = path.read_text(), str(path.relative_to(ROOT))
        allowed = ENVIRONMENT_PASSED_TO_CHILDREN.get(name)
        if allowed is not None:
            assert text.count("os.environ") == 1 and allowed in text, name  # only copied, never read from
            continue
        if "os.environ" in text or "getenv" in text:
            readers.append(name)
    assert readers == []


def test_the_checker_sees_imports() -> None:
    """Guards the guard: the scan finds kfp where it is imported."""
    assert "kfp" in imported_modules(ROOT / "components")[str(Path("components") / "ingest.py")]
