"""Every third-party package that src/, components/ or pipelines/ import is declared in pyproject.toml.

A package that only arrives as someone else's dependency (kubernetes through kfp, grpcio through
keras-tuner) can vanish or change major version under tunepipe when that someone moves; a pip user
then gets a traceback. Imports are read from the source (AST), mapped to distributions with
``importlib.metadata.packages_distributions()``, and compared with ``[project].dependencies`` and,
for the optional imports below, with the extra that provides them.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "components", "pipelines")
FIRST_PARTY = {"tunepipe", "components", "pipelines"}
# Imported only on the paths that need them; each extra must declare the distribution named here.
OPTIONAL = {
    "tensorflow": {"cpu": "tensorflow-cpu", "gpu": "tensorflow"},
    "kserve": {"serve": "kserve"},
    "docker": {"docker": "docker"},
}
# Keras backends other than TensorFlow: imported only when the user made one the backend
# (KERAS_BACKEND=jax), so the user installs it; no extra pins one.
USER_BACKENDS = {"jax"}


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``PyYAML`` == ``pyyaml``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group())  # type: ignore[union-attr]


def imports_under(folders: list[Path]) -> dict[str, set[str]]:
    """Dotted third-party names imported under ``folders`` (``from a import b`` gives ``a.b``) -> files."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for source in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                        found.setdefault(name, set()).add(source.name)
    return found


def distribution_of(dotted: str, top_level: dict[str, list[str]]) -> str | None:
    """The installed distribution that ships ``dotted``; None when none is installed.

    A top-level name can be shipped by several distributions (the ``google`` namespace; ``kfp``,
    whose ``kfp.kubernetes`` comes from kfp-kubernetes): the one that ships the longest prefix of
    ``dotted`` as a module (``kfp/__init__.py``), or else as a folder (``google/api_core/``), wins.
    """
    candidates = top_level.get(dotted.split(".")[0], [])
    parts = dotted.split(".")
    for depth in range(len(parts), 0, -1):
        path = "/".join(parts[:depth])
        for shipped in ({f"{path}.py", f"{path}/__init__.py"}, None):
            owners = {name for name in candidates if _ships(name, path, shipped)}
            if len(owners) == 1:
                return canonical(owners.pop())
    return None


def _ships(distribution: str, path: str, modules: set[str] | None) -> bool:
    """Whether ``distribution`` has one of ``modules`` (or, when None, any file under ``path/``)."""
    files = [str(file) for file in metadata.distribution(distribution).files or []]
    return any(file in modules if modules else file.startswith(f"{path}/") for file in files)


def undeclared(imported: dict[str, set[str]], declared: set[str],
               top_level: dict[str, list[str]]) -> dict[str, list[str]]:
    """Imported names whose distribution is not in ``declared`` (or not installed), with their files."""
    missing: dict[str, set[str]] = {}
    for dotted, files in imported.items():
        top = dotted.split(".")[0]
        if top in OPTIONAL or top in USER_BACKENDS:
            continue
        distribution = distribution_of(dotted, top_level)
        if distribution not in declared:
            missing.setdefault(distribution or f"{top} (not installed)", set()).update(files)
    return {name: sorted(files) for name, files in missing.items()}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    declared = {requirement_name(requirement) for requirement in project()["dependencies"]}
    imported = imports_under([ROOT / folder for folder in SCANNED])
    assert undeclared(imported, declared, metadata.packages_distributions()) == {}


def test_every_dependency_is_declared_with_a_range() -> None:
    bare = [requirement for requirement in project()["dependencies"] if not re.search(r"[<>=~]", requirement)]
    assert bare == []


def test_optional_imports_are_declared_by_their_extras() -> None:
    extras = project()["optional-dependencies"]
    missing = [f"{module}: {distribution} not in [{extra}]" for module, by_extra in OPTIONAL.items()
               for extra, distribution in by_extra.items()
               if distribution not in {requirement_name(requirement) for requirement in extras.get(extra, [])}]
    assert missing == []


def test_a_dependency_that_only_arrives_through_another_is_reported(tmp_path: Path) -> None:
    (tmp_path / "step.py").write_text("from google.api_core import exceptions\nimport yaml\nimport tensorflow\n")
    imported = imports_under([tmp_path])
    top_level = metadata.packages_distributions()
    assert undeclared(imported, {"pyyaml"}, top_level) == {"google-api-core": ["step.py"]}
    assert undeclared(imported, {"pyyaml", "google-api-core"}, top_level) == {}
