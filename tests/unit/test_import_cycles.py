"""No import circles among the project's modules: arrows between modules point one way.

The graph is built from the source (AST), not by importing: every ``import`` and ``from ...
import`` counts, at module level and inside functions (a deferred import still ties the two
modules together), and ``from tunepipe.x import y`` is an arrow to ``tunepipe.x.y`` when ``y``
is a submodule.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# Each project package: its folder and its import name.
PACKAGES = ((ROOT / "src" / "tunepipe", "tunepipe"), (ROOT / "components", "components"),
            (ROOT / "pipelines", "pipelines"))


def module_files(packages: tuple[tuple[Path, str], ...]) -> dict[str, Path]:
    """Every module of the packages by dotted name (a package's ``__init__`` under the package's name)."""
    modules = {}
    for folder, name in packages:
        for source in folder.rglob("*.py"):
            parts = [name, *source.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = source
    return modules


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules one import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:  # relative: from the module's own package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    found = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            found.add(submodule)
        elif base in known:
            found.add(base)
    return found


def import_graph(packages: tuple[tuple[Path, str], ...]) -> dict[str, set[str]]:
    """Which project modules each project module imports (anywhere in its source)."""
    files = module_files(packages)
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, source in files.items():
        is_package = source.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text())):
            edges |= _targets(node, module, is_package, known)
        graph[module] = edges - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as ``[a, b, ..., a]``) for each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, set(group), min(group)) for group in groups]


def _cycle_through(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside one strongly connected group."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a cycle")


def test_no_project_module_imports_itself_back_through_others() -> None:
    cycles = [" -> ".join(cycle) for cycle in find_cycles(import_graph(PACKAGES))]
    assert cycles == []


def test_the_graph_sees_the_whole_project() -> None:
    """Guards the guard: the graph holds every package and a deferred submodule import."""
    graph = import_graph(PACKAGES)
    assert {"tunepipe.tune_step", "components.generate", "pipelines.cli"} <= set(graph)
    assert "tunepipe.data.readers" in graph["tunepipe.data.images"]  # imported inside a function
    assert "pipelines.pipeline" in graph["pipelines.cli"]  # imported inside a function


def test_the_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    """Guards the guard: a cycle through a function-level import and ``from pkg import module``."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n    return b\n")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg import a\n")  # imports into the cycle, not part of it
    cycles = find_cycles(import_graph(((package, "pkg"),)))
    assert cycles == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
