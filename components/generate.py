"""Each step's component function, written from its declaration (:mod:`tunepipe.dag`).

KFP builds a lightweight component from a Python function: its signature gives the component's
inputs and outputs (``Input[Dataset]``, ``Output[Model]``, typed parameters), its docstring the
descriptions the Kubeflow UI shows, and its source (``inspect.getsource``) is embedded in the
compiled pipeline and run by KFP's executor in the step's container. So the function is written
as source text: the signature and docstring from the declaration, and a body that hands every
argument to :func:`tunepipe.binding.run_component` in the installed package. The text is
registered in :mod:`linecache` under a name of its own, which is where ``inspect.getsource`` looks
for code that has no file (as ``dataclasses`` and ``attrs`` do for the methods they write).
"""

from __future__ import annotations

import keyword
import linecache
import re
import textwrap
from collections.abc import Callable
from typing import Any

from kfp import dsl

from tunepipe.contract import ARTIFACT_KINDS, RETURN_TYPES, Dag, Step
from tunepipe.dag import load

# Wraps the docstring's prose (generated lines, not linted; kept readable in the compiled YAML).
WIDTH = 100
# The body of every component: the first line takes exactly the parameters, before any other name exists.
BODY = '''    arguments = dict(locals())  # first: exactly the parameters above
    from tunepipe.binding import run_component

    return run_component("{name}", arguments, "{dag}")
'''


# ``package.module:attribute``: where a DAG is declared (also written into the body).
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _refuse_non_names(step: Step, dag: Dag, reference: str) -> None:
    """Refuses a declaration whose names, kinds or reference are not plain Python names: the text
    :func:`step_function` compiles holds only those and quoted prose, nothing else from the declaration."""
    names = [step.name, *(item.name for item in (*step.inputs, *step.outputs))]
    kinds = [dag.kind(item.source) for item in step.inputs] + [output.kind for output in step.outputs]
    odd = [name for name in names if not name.isidentifier() or keyword.iskeyword(name)]
    odd += [kind for kind in kinds if not kind.isidentifier()]
    if odd or not _REFERENCE.match(reference):
        raise ValueError(f"step {step.name!r} of {reference!r}: not a Python name: {odd or [reference]}")


def _annotation(dag: Dag, kind: str, output: bool = False) -> str:
    if kind in ARTIFACT_KINDS:
        return f"{'Output' if output else 'Input'}[{kind}]"
    return kind


def _signature(step: Step, dag: Dag) -> str:
    lines = [f"    {item.name}: {_annotation(dag, dag.kind(item.source))}," for item in step.inputs]
    lines += [f"    {output.name}: {_annotation(dag, output.kind, output=True)}," for output in step.outputs]
    returns = RETURN_TYPES[step.returns].__name__ if step.returns else "None"
    return f"def {step.name}(\n" + "\n".join(lines) + f"\n) -> {returns}:\n"


def _docstring(step: Step) -> str:
    described = [item for item in (*step.inputs, *step.outputs) if item.doc]
    parts = [textwrap.fill(step.description, WIDTH, subsequent_indent="    ")]
    if described:
        parts.append("Args:\n" + "\n".join(f"        {item.name}: {item.doc}" for item in described))
    if step.returns_doc:
        parts.append(f"Returns:\n        {step.returns_doc}")
    text = "\n\n    ".join(parts).replace('"""', "'''")
    return f'    """{text}\n    """\n'


def component_source(step: Step, reference: str) -> str:
    """The source of ``step``'s component function: signature, docstring, a three-line body.

    Args:
        step: A step of the DAG at ``reference``.
        reference: Where its DAG is (``module:attribute``); the body runs the step from there.
    """
    dag = load(reference)
    _refuse_non_names(step, dag, reference)
    return _signature(step, dag) + _docstring(step) + BODY.format(name=step.name, dag=reference)


def step_function(step: Step, reference: str) -> Callable[..., Any]:
    """``step``'s component function, compiled from :func:`component_source` and findable by
    ``inspect.getsource`` (KFP embeds that source in the compiled pipeline)."""
    source = component_source(step, reference)
    filename = f"<component {step.name} of {reference}>"
    # An entry with no modification time is never dropped by linecache.checkcache.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"__name__": __name__, "Input": dsl.Input, "Output": dsl.Output}
    namespace.update({kind: getattr(dsl, kind) for kind in ARTIFACT_KINDS})
    # The declaration's own text, nothing from outside; annotations as objects, as KFP reads them (no
    # ``from __future__ import annotations`` inherited from this module).
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    function: Callable[..., Any] = namespace[step.name]
    return function
