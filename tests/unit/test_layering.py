"""The architecture's rules, checked on the source: arrows point down only."""

import ast
from collections.abc import Callable
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
# chief and worker processes it starts, plus Keras Tuner's variables, and pins a worker process to
# its GPU; it reads no setting from it.
ENVIRONMENT_PASSED_TO_CHILDREN = {
    "src/tunepipe/execution/tuner_processes.py": ("env = {**os.environ, **extra_env",),
    "src/tunepipe/execution/devices.py": ('os.environ["CUDA_VISIBLE_DEVICES"] = gpu',),
}


def test_core_reads_no_environment() -> None:
    """Configuration comes in as arguments, never from the environment."""
    readers = []
    for path in (ROOT / "src" / "tunepipe").rglob("*.py"):
        text, name = path.read_text(), str(path.relative_to(ROOT))
        allowed = ENVIRONMENT_PASSED_TO_CHILDREN.get(name)
        if allowed is not None:
            # only copied to children or written, never read from
            assert text.count("os.environ") == len(allowed) and all(use in text for use in allowed), name
            continue
        if "os.environ" in text or "getenv" in text:
            readers.append(name)
    assert readers == []


def test_the_checker_sees_imports() -> None:
    """Guards the guard: the scan finds kfp where it is imported."""
    assert "kfp" in imported_modules(ROOT / "components")[str(Path("components") / "ingest.py")]


CORE = ROOT / "src" / "tunepipe"


def tunepipe_imports(core: Path, subpackage: str) -> dict[str, set[str]]:
    """The ``tunepipe`` modules each file of ``core/subpackage`` imports, anywhere in it, by dotted
    name: ``from tunepipe.x import y`` counts as both ``tunepipe.x`` and ``tunepipe.x.y``."""
    found: dict[str, set[str]] = {}
    for source in (core / subpackage).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "tunepipe")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tunepipe"):
                module = str(node.module)
                if module.split(".")[0] == "tunepipe":
                    names.add(module)
                    names.update(f"{module}.{alias.name}" for alias in node.names)
        found[str(source.relative_to(core.parent))] = names
    return found


def step_modules(core: Path) -> set[str]:
    """The step layer's modules: ``tunepipe.<name>_step`` for every ``<name>_step.py`` on top of core."""
    return {f"tunepipe.{source.stem}" for source in core.glob("*_step.py")}


def layer_violations(core: Path, subpackage: str, forbidden: Callable[[str], bool]) -> dict[str, list[str]]:
    """For each file of ``subpackage`` that imports a module ``forbidden`` says no to: those modules."""
    found = {}
    for path, names in tunepipe_imports(core, subpackage).items():
        bad = sorted(name for name in names if forbidden(name))
        if bad:
            found[path] = bad
    return found


def _under(*packages: str) -> Callable[[str], bool]:
    roots = tuple(f"tunepipe.{package}" for package in packages)
    return lambda name: name in roots or name.startswith(tuple(f"{root}." for root in roots))


def storage_rule(core: Path) -> Callable[[str], bool]:
    """storage sits under everything but errors, artifacts and datasets: no config, data, model or step."""
    steps = step_modules(core)
    return lambda name: _under("config", "data", "modelling", "evaluation", "publishing", "reports")(name) or (
        name in steps
    )


def data_rule(core: Path) -> Callable[[str], bool]:
    """data never reaches up into modelling, evaluation, publishing or a step."""
    steps = step_modules(core)
    return lambda name: _under("modelling", "evaluation", "publishing")(name) or name in steps


def reports_rule(core: Path) -> Callable[[str], bool]:
    """reports renders what it is given: nothing from tunepipe outside reports itself but the artifact
    names and keys (``tunepipe.artifacts``, a leaf of constants that the model card shares)."""
    return lambda name: name not in ("tunepipe", "tunepipe.artifacts") and not _under("reports")(name)


def serving_rule(core: Path) -> Callable[[str], bool]:
    """serving stands beside the steps: it reads what export published (config, storage, publishing,
    reports, artifacts, errors) and never reaches into data, modelling, evaluation or a step."""
    allowed = _under("config", "storage", "publishing", "reports", "artifacts", "errors", "serving")
    return lambda name: name != "tunepipe" and not allowed(name)


def watching_rule(core: Path) -> Callable[[str], bool]:
    """watching stands beside the steps too: it lists and fingerprints data, reads the champion's card
    and keeps its records (data, storage, publishing, reports, config), and never trains, evaluates or
    runs a step; it starts runs through a launcher the CLI hands it."""
    allowed = _under("config", "data", "storage", "publishing", "reports", "artifacts", "errors", "watching")
    return lambda name: name != "tunepipe" and not allowed(name)


def step_rule(core: Path) -> Callable[[str], bool]:
    """No sub-package imports a step module: the step layer is on top."""
    steps = step_modules(core)
    return lambda name: name in steps


def modelling_rule(core: Path) -> Callable[[str], bool]:
    """modelling is what a model is: it never asks where work runs (execution, which imports it) or
    reaches up into a step."""
    steps = step_modules(core)
    return lambda name: _under("execution")(name) or name in steps


def execution_rule(core: Path) -> Callable[[str], bool]:
    """execution runs the work steps hand it (models, folds): it never imports a step, publishing,
    serving or watching."""
    steps = step_modules(core)
    return lambda name: _under("publishing", "serving", "watching")(name) or name in steps


SUBPACKAGES = ("config", "storage", "data", "modelling", "execution", "evaluation", "publishing", "reports", "serving",
               "watching")
RULES = {"storage": storage_rule, "data": data_rule, "reports": reports_rule, "serving": serving_rule,
         "watching": watching_rule, "modelling": modelling_rule, "execution": execution_rule}


@pytest.mark.parametrize("subpackage", sorted(RULES))
def test_subpackage_imports_only_what_lies_below_it(subpackage: str) -> None:
    assert layer_violations(CORE, subpackage, RULES[subpackage](CORE)) == {}


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_no_subpackage_imports_a_step_module(subpackage: str) -> None:
    assert layer_violations(CORE, subpackage, step_rule(CORE)) == {}


def test_only_the_cli_imports_serving_and_only_its_server_imports_kserve() -> None:
    """serving is optional (``tunepipe[serve]``): the pipeline, components and the rest of core run without it."""
    serving = {path for path, names in imported_modules(ROOT / "src" / "tunepipe").items()
               if "kserve" in names}
    assert serving == {str(Path("src/tunepipe/serving/server.py"))}
    allowed = (str(Path("src/tunepipe/serving")), str(Path("pipelines/cli.py")))
    users = []
    for folder in (ROOT / "src" / "tunepipe", ROOT / "components", ROOT / "pipelines"):
        for path, names in tunepipe_imports(folder.parent, folder.name).items():
            relative = str((folder.parent.parent / path).relative_to(ROOT))
            if any(_under("serving")(name) for name in names) and not relative.startswith(allowed):
                users.append(relative)
    assert users == []


def test_every_step_has_a_module_of_its_own() -> None:
    names = {name.removeprefix("tunepipe.") for name in step_modules(CORE)}
    assert names == {f"{step}_step" for step in (
        "validate", "fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export", "refusal", "deploy")}


@pytest.fixture
def planted_core(tmp_path: Path) -> Path:
    """A core with one import each rule forbids (and one it allows), inside a function or not."""
    core = tmp_path / "tunepipe"
    for folder in ("storage", "data", "reports", "modelling", "serving", "execution"):
        (core / folder).mkdir(parents=True)
    (core / "tune_step.py").write_text("")
    (core / "storage" / "cache.py").write_text("from tunepipe.errors import DataError\nimport tunepipe.config\n")
    (core / "data" / "read.py").write_text("def f():\n    from tunepipe.modelling import model\n")
    (core / "reports" / "page.py").write_text(
        "from tunepipe import artifacts\nfrom tunepipe.reports import x\nfrom tunepipe.data import sources\n")
    (core / "modelling" / "worker.py").write_text(
        "from tunepipe.execution.replicas import replica_scope\n"
        "def main():\n    from tunepipe.tune_step import tuning\n")
    (core / "execution" / "runner.py").write_text(
        "from tunepipe.modelling import train\nfrom tunepipe.publishing import layout\n")
    (core / "serving" / "loader.py").write_text(
        "from tunepipe import errors\nfrom tunepipe.publishing import layout\nfrom tunepipe.modelling import model\n")
    return core


@pytest.mark.parametrize(("subpackage", "rule", "expected"), [
    ("storage", storage_rule, ["tunepipe.config"]),
    ("data", data_rule, ["tunepipe.modelling", "tunepipe.modelling.model"]),
    ("reports", reports_rule, ["tunepipe.data", "tunepipe.data.sources"]),
    ("modelling", step_rule, ["tunepipe.tune_step"]),
    ("modelling", modelling_rule, ["tunepipe.execution.replicas", "tunepipe.execution.replicas.replica_scope",
                                   "tunepipe.tune_step"]),
    ("execution", execution_rule, ["tunepipe.publishing", "tunepipe.publishing.layout"]),
    ("serving", serving_rule, ["tunepipe.modelling", "tunepipe.modelling.model"]),
])
def test_each_layer_checker_sees_a_planted_violation(
    planted_core: Path, subpackage: str, rule: Callable[[Path], Callable[[str], bool]], expected: list[str]
) -> None:
    """Guards the guards: every rule reports the one import planted against it, and nothing else."""
    folder = next((planted_core / subpackage).glob("*.py"))
    assert layer_violations(planted_core, subpackage, rule(planted_core)) == {
        str(folder.relative_to(planted_core.parent)): expected
    }
