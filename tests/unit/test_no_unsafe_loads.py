"""No code path deserializes untrusted data into code: no pickle, unsafe YAML, eval or exec.

Every Python file of src/, components/ and pipelines/ is parsed and each call checked; a
finding names file:line. Data, models and configuration come from outside (buckets, uploaded
configs, earlier runs' artifacts), and pickle, ``yaml.load`` with the full loader, NumPy's
object arrays and Keras' unsafe mode can all run code while reading.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "components", "pipelines")
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "marshal", "shelve"}
# Calls that read Python objects whatever their arguments.
ALWAYS_UNSAFE = {"read_pickle", "unsafe_load", "full_load", "unsafe_load_all", "full_load_all", "eval", "exec"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
# Reviewed calls, each with why it reads no outside data: file -> (problem, reason).
REVIEWED = {
    "components/generate.py": ("exec() can run code from its input",
                               "compiles a component function written from the DAG declaration, which is code "
                               "itself; its names and kinds are refused unless plain Python names"),
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "<expression>"
    return None


def _call_problem(call: ast.Call) -> str | None:
    name = _dotted(call.func)
    last = name.rsplit(".", 1)[-1]
    module = name.split(".", 1)[0]
    if module in PICKLING_MODULES and last.startswith("load"):
        return f"{name}() unpickles"
    if last in ALWAYS_UNSAFE and (last not in ("eval", "exec") or name == last):
        return f"{name}() can run code from its input"
    if name in ("yaml.load", "yaml.load_all") and _dotted(_loader(call)).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
        return f"{name}() without a safe Loader"
    if _keyword(call, "allow_pickle") is True:
        return f"{name}(allow_pickle=True)"
    if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
        return f"{name}() without allow_pickle=False"
    if _keyword(call, "safe_mode") is False:
        return f"{name}(safe_mode=False)"
    if last == "load" and module == "torch" and _keyword(call, "weights_only") is not True:
        return f"{name}() without weights_only=True"
    return None


def _loader(call: ast.Call) -> ast.AST:
    for keyword in call.keywords:
        if keyword.arg == "Loader":
            return keyword.value
    return call.args[1] if len(call.args) > 1 else ast.Constant(None)


def findings(source: str, name: str) -> list[str]:
    """``name:line: problem`` for every unsafe import or call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        problem = None
        if isinstance(node, ast.Import):
            modules = [alias.name.split(".")[0] for alias in node.names]
            problem = next((f"imports {m}" for m in modules if m in PICKLING_MODULES), None)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLING_MODULES:
            problem = f"imports from {node.module}"
        elif isinstance(node, ast.Call):
            problem = _call_problem(node)
        if problem:
            found.append(f"{name}:{node.lineno}: {problem}")
    return found


def test_the_scanner_catches_each_unsafe_form() -> None:
    bad = """
import pickle
from joblib import load
import numpy as np, yaml, keras, pandas as pd
pickle.loads(blob)
cloudpickle.load(handle)
np.load(path)
np.load(path, allow_pickle=True)
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
yaml.unsafe_load(text)
pd.read_pickle(path)
keras.models.load_model(path, safe_mode=False)
eval(expression)
exec(code)
"""
    lines = sorted(int(item.split(":")[1]) for item in findings(bad, "bad.py"))
    assert lines == [2, 3, *range(5, 16)]  # line 4 imports only safe modules
    good = """
import numpy as np, yaml, keras
np.load(path, allow_pickle=False)
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
keras.models.load_model(path)
model.eval()
"""
    assert findings(good, "good.py") == []


def test_no_unsafe_deserialization_in_the_project() -> None:
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            reviewed = REVIEWED.get(name, ("", ""))[0]
            found += [item for item in findings(path.read_text(encoding="utf-8"), name)
                      if not reviewed or not item.endswith(reviewed)]
    assert not found, "unsafe deserialization:\n" + "\n".join(found)


def test_the_reviewed_exec_refuses_a_declaration_that_is_not_plain_names() -> None:
    """components/generate.py compiles text written from a declaration: a name that is not a Python
    name (so could carry code into that text) is refused before anything is compiled."""
    import sys

    sys.path.insert(0, str(ROOT))
    from components.generate import component_source
    from tunepipe.contract import Input
    from tunepipe.dag import DAG

    step = DAG.steps[0]
    smuggled = type(step)(**{**vars(step), "inputs": (Input("x=__import__('os')", "seed"),)})
    with pytest.raises(ValueError, match="not a Python name"):
        component_source(smuggled, "tunepipe.dag:DAG")
    assert "def validate(" in component_source(step, "tunepipe.dag:DAG")
