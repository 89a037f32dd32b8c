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


def test_core_reads_no_environment() -> None:
    """Configuration comes in as arguments, never from the environment."""
    readers = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "tunepipe").rglob("*.py")
        if "os.environ" in path.read_text() or "getenv" in path.read_text()
    ]
    assert readers == []


def test_the_checker_sees_imports() -> None:
    """Guards the guard: the scan finds kfp where it is imported."""
    assert "kfp" in imported_modules(ROOT / "components")[str(Path("components") / "ingest.py")]
