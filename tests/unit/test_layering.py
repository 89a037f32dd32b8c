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
    assert "kfp" in imported_modules(ROOT / "components")[str(Path("components") / "generate.py")]


CORE = ROOT / "src" / "tunepipe"
STEPS = "*_step"
# The core's parts, lowest first, each with the parts it may import: a part names only parts above
# it, so the table is the dependency order itself. A part is a sub-package (a folder) or a module on
# top of the core; ``tunepipe`` is the package root (its version); ``*_step`` is every step module.
# A part the table does not name fails the tests until it gets a row.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("tunepipe", frozenset()),
    ("errors", frozenset()),
    ("artifacts", frozenset()),  # every artifact file name and metadata key, declared once
    ("identity", frozenset()),
    # the step contract and the words the DAG is declared in: nothing of the core
    ("contract", frozenset()),
    ("datasets", frozenset({"errors"})),
    # where bytes live: no configuration, data, model or step
    ("storage", frozenset({"errors", "artifacts", "datasets"})),
    ("step_logging", frozenset({"errors"})),
    # the typed settings, with what validating them needs (locations, the metric names thresholds use)
    ("config", frozenset({"errors", "artifacts", "datasets", "storage"})),
    # renders what it is given: the artifact names and keys only
    ("reports", frozenset({"artifacts"})),
    # tables and images: never a model, an evaluation, a publication or a step
    ("data", frozenset({"errors", "artifacts", "datasets", "storage", "config", "reports"})),
    ("modelling", frozenset({"errors", "artifacts", "identity", "datasets", "storage", "step_logging", "config",
                             "data"})),
    ("publishing", frozenset({"tunepipe", "errors", "artifacts", "storage", "config", "reports", "data",
                              "modelling"})),
    ("evaluation", frozenset({"errors", "artifacts", "storage", "config", "reports", "data", "modelling",
                              "publishing"})),
    # where work runs (processes, devices, pods): it runs the models and folds a step hands it; never a
    # publication, a served model or a step; modelling and evaluation never import it
    ("execution", frozenset({"tunepipe", "errors", "artifacts", "identity", "datasets", "storage", "step_logging",
                             "config", "data", "modelling", "evaluation"})),
    # beside the steps: reads what export published; never data, modelling, evaluation or a step
    ("serving", frozenset({"errors", "artifacts", "storage", "config", "reports", "publishing"})),
    # beside the steps too: lists and fingerprints data, reads the champion's card, keeps its records; it
    # never trains, evaluates or runs a step (the CLI hands it a launcher)
    ("watching", frozenset({"errors", "artifacts", "storage", "config", "reports", "data", "publishing"})),
    ("step_folders", frozenset({"artifacts", "storage"})),
    # the DAG declared once: steps by module name, so declaring imports no step
    ("dag", frozenset({"config", "contract"})),
    # the step layer: any part but serving and watching, never another step
    (STEPS, frozenset({"tunepipe", "errors", "artifacts", "identity", "contract", "datasets", "storage",
                       "step_logging", "config", "reports", "data", "modelling", "publishing", "evaluation",
                       "execution", "step_folders"})),
    # on top: runs a declared step from its arguments (the step's module imported by name, when it runs)
    ("binding", frozenset({"contract", "storage", "step_logging", "config", "step_folders", "dag"})),
)
# Above the core: the components wrap the steps, the pipelines assemble the components; the core
# imports neither (nor kfp: test_core_never_imports_kfp_components_or_pipelines).
PROJECT_LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("tunepipe", frozenset()),
    ("components", frozenset({"tunepipe"})),
    ("pipelines", frozenset({"tunepipe", "components"})),
)


def part_of(core: Path, path: Path) -> str:
    """The part a file of the core belongs to: its sub-package, its module on top, or ``*_step``."""
    relative = path.relative_to(core)
    if len(relative.parts) > 1:
        return relative.parts[0]
    if relative.stem == "__init__":
        return "tunepipe"
    return STEPS if relative.stem.endswith("_step") else relative.stem


def imported_parts(core: Path, source: Path) -> set[str]:
    """The parts of the core that ``source`` imports, anywhere in it (deferred imports count).

    ``tunepipe.x...`` is part ``x``; ``from tunepipe import x`` is part ``x`` when ``x`` is a module or
    sub-package of ``core``, else an attribute of the package root (its version): part ``tunepipe``.
    """
    modules = {path.stem if path.is_file() else path.name for path in core.iterdir()}

    def part(name: str) -> str:
        return STEPS if name.endswith("_step") else name

    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            dotted = [alias.name.split(".") for alias in node.names if alias.name.split(".")[0] == "tunepipe"]
            found.update(part(names[1]) if len(names) > 1 else "tunepipe" for names in dotted)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "tunepipe":
            names = str(node.module).split(".")
            if len(names) > 1:
                found.add(part(names[1]))
            else:
                found.update(part(alias.name) if alias.name in modules else "tunepipe" for alias in node.names)
    return found


def layer_violations(core: Path, layers: tuple[tuple[str, frozenset[str]], ...]) -> dict[str, list[str]]:
    """For each file of ``core``: the parts it imports that its row does not allow (a step importing a step
    counts), or ``["no row in the table"]`` for a file whose part has none."""
    allowed = dict(layers)
    found = {}
    for source in sorted(core.rglob("*.py")):
        own = part_of(core, source)
        if own not in allowed:
            found[str(source.relative_to(core.parent))] = ["no row in the table"]
            continue
        bad = sorted(name for name in imported_parts(core, source) - allowed[own] if name != own or own == STEPS)
        if bad:
            found[str(source.relative_to(core.parent))] = bad
    return found


def test_the_table_is_a_dependency_order() -> None:
    """Each row names only rows above it: no two parts may import each other, directly or around a circle."""
    for layers in (LAYERS, PROJECT_LAYERS):
        above: set[str] = set()
        for name, allowed in layers:
            assert allowed <= above, f"{name} may import {sorted(allowed - above)}, which are not above it"
            above.add(name)


def test_every_part_of_the_core_imports_only_what_its_row_allows() -> None:
    assert layer_violations(CORE, LAYERS) == {}


def test_components_and_pipelines_import_only_what_their_rows_allow() -> None:
    allowed = dict(PROJECT_LAYERS)
    offenders = {}
    for folder in ("components", "pipelines"):
        for path, names in imported_modules(ROOT / folder).items():
            project = names & set(allowed)
            if project - allowed[folder] - {folder}:
                offenders[path] = sorted(project - allowed[folder] - {folder})
    assert offenders == {}


def test_only_the_cli_imports_serving_and_only_its_server_imports_kserve() -> None:
    """serving is optional (``tunepipe[serve]``): the pipeline, components and the rest of core run without it."""
    serving = {path for path, names in imported_modules(CORE).items() if "kserve" in names}
    assert serving == {str(Path("src/tunepipe/serving/server.py"))}
    users = [str(source.relative_to(ROOT)) for folder in (CORE, ROOT / "components", ROOT / "pipelines")
             for source in folder.rglob("*.py") if "serving" in imported_parts(CORE, source)
             and not source.is_relative_to(CORE / "serving") and source != ROOT / "pipelines" / "cli.py"]
    assert users == []


def test_every_step_has_a_module_of_its_own() -> None:
    names = {source.stem for source in CORE.glob(f"{STEPS}.py")}
    assert names == {f"{step}_step" for step in (
        "validate", "fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export", "refusal", "deploy")}


@pytest.fixture
def planted_core(tmp_path: Path) -> Path:
    """A core with one import each kind of row forbids (and some it allows), inside a function or not,
    and a sub-package the table does not know."""
    core = tmp_path / "tunepipe"
    for folder in ("storage", "data", "reports", "modelling", "serving", "config", "engines"):
        (core / folder).mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "tune_step.py").write_text("")
    (core / "train_step.py").write_text("from tunepipe.tune_step import x\n")
    (core / "storage" / "cache.py").write_text("from tunepipe.errors import DataError\nimport tunepipe.config\n")
    (core / "data" / "read.py").write_text("def f():\n    from tunepipe.modelling import model\n")
    (core / "reports" / "page.py").write_text(
        "from tunepipe import artifacts\nfrom tunepipe.reports import x\nfrom tunepipe.data import sources\n")
    (core / "modelling" / "worker.py").write_text(
        "from tunepipe.execution.replicas import replica_scope\n"
        "def main():\n    from tunepipe.tune_step import tuning\n")
    (core / "serving" / "loader.py").write_text(
        "from tunepipe import errors\nfrom tunepipe.publishing import layout\nfrom tunepipe.modelling import model\n")
    (core / "config" / "training.py").write_text(
        "from tunepipe import __version__\nfrom tunepipe.evaluation import b\n")
    (core / "engines" / "runner.py").write_text("from tunepipe.errors import TunepipeError\n")
    for name in ("errors", "artifacts"):
        (core / f"{name}.py").write_text("")
    return core


def test_the_layer_check_sees_every_planted_violation_and_an_unknown_part(planted_core: Path) -> None:
    """Guards the guard: every import planted against the table is reported, with nothing else."""
    assert layer_violations(planted_core, LAYERS) == {
        "tunepipe/config/training.py": ["evaluation", "tunepipe"],
        "tunepipe/data/read.py": ["modelling"],
        "tunepipe/engines/runner.py": ["no row in the table"],
        "tunepipe/modelling/worker.py": [STEPS, "execution"],
        "tunepipe/reports/page.py": ["data"],
        "tunepipe/serving/loader.py": ["modelling"],
        "tunepipe/storage/cache.py": ["config"],
        "tunepipe/train_step.py": [STEPS],
    }


def test_the_order_check_refuses_a_row_that_names_a_part_below_it() -> None:
    """Guards the guard: a table in which config may import evaluation is not an order."""
    broken = tuple((name, allowed | {"evaluation"} if name == "config" else allowed) for name, allowed in LAYERS)
    above: set[str] = set()
    refused = []
    for name, allowed in broken:
        if not allowed <= above:
            refused.append(name)
        above.add(name)
    assert refused == ["config"]
