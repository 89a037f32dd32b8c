"""The contract every step meets, and the words its declaration (:mod:`tunepipe.dag`) is written in.

A step is a module with two frozen dataclasses and one function: ``Inputs`` (the upstream artifacts
as paths, the parameters, the validated configuration sections it reads), ``Outputs`` (the paths it
writes) and ``run(inputs, outputs) -> StepResult``. How a step is wired into the pipeline (where each
input comes from, what kind each output is, which branch it runs in) is declared once, as a
:class:`Step`, and everything that runs steps derives from that: the Kubeflow components and
pipeline, and the in-process runner of the benchmarks. Nothing here imports ``kfp``: artifact kinds
are plain strings, the names of the ``kfp.dsl`` types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Artifact kinds, named as kfp.dsl names its types. A step writes a folder for most kinds, one file
# for the kinds that are a single document (the Kubeflow UI renders HTML and Markdown artifacts).
ARTIFACT_KINDS = frozenset({"Artifact", "Dataset", "Model", "HTML", "Markdown", "Metrics", "ClassificationMetrics"})
# Kinds that hold values, not files: the step returns them in its result and the runner records them.
METRIC_KINDS = frozenset({"Metrics", "ClassificationMetrics"})
# A step's returned value, by kind: the annotation its component declares. ``json``: a mapping the
# step returns, handed on as one JSON string (a string output, which dsl.OneOf can select).
RETURN_TYPES: Mapping[str, type] = {"str": str, "bool": bool, "dict": dict, "json": str}
# How KFP names a component's returned value among its outputs.
RETURNED = "Output"
# Sources that are neither a parameter nor a step's output: the run's id and name, resolved at run time.
RUN_ID, RUN_NAME = "@run_id", "@run_name"


@dataclass(frozen=True)
class Input:
    """One input of a step, as its component takes it.

    Attributes:
        name: The component's input name, and the ``Inputs`` field it fills (unless ``into``).
        source: Where it comes from: a pipeline parameter's name, ``"<step>.<output>"`` (an upstream
            step's artifact, or its returned value as ``"<step>.Output"``), or :data:`RUN_ID` /
            :data:`RUN_NAME`.
        doc: Its description in the component (the Kubeflow UI shows it); empty: none.
        section: Validate the value as this configuration section (``tunepipe.config.section``)
            before the step sees it; empty: passed as it is.
        into: Fold the value into the section of this other input, as the UI parameter it is
            (``tune_max_epochs`` into ``tuning``), instead of filling a field of its own.
        uri: An artifact input handed over as its URI, not its local path (recorded, not read).
        state_root_of: An empty value becomes the state folder beside the runs under the pipeline
            root, found from the URI of this output of the step (resumable state of a retried step).
    """

    name: str
    source: str
    doc: str = ""
    section: str = ""
    into: str = ""
    uri: bool = False
    state_root_of: str = ""

    @property
    def upstream(self) -> tuple[str, str] | None:
        """``(step, output)`` when the input is an upstream step's output, else ``None``."""
        step, dot, output = self.source.partition(".")
        return (step, output) if dot else None


@dataclass(frozen=True)
class Output:
    """One output of a step.

    Attributes:
        name: The component's output name, and the ``Outputs`` field it fills.
        kind: Its artifact kind (:data:`ARTIFACT_KINDS`).
        doc: Its description in the component.
        reference: The step writes nothing at the artifact's own place: it names another folder in
            its result (:attr:`StepResult.uris`), which the artifact then points to.
    """

    name: str
    kind: str
    doc: str = ""
    reference: bool = False

    @property
    def written(self) -> bool:
        """Whether the step writes it (an ``Outputs`` field): neither values nor a reference."""
        return self.kind not in METRIC_KINDS and not self.reference


@dataclass(frozen=True)
class Branch:
    """A condition a step runs under: ``source == True``, or its ``otherwise`` (the Else branch).

    Attributes:
        name: The condition's name in the compiled pipeline and the Kubeflow UI (``blessed``).
        source: A boolean pipeline parameter or upstream returned value (``evaluate.Output``).
        otherwise: The branch that runs when the test fails; it follows the branch that tests it.
    """

    name: str
    source: str
    otherwise: bool = False


@dataclass(frozen=True)
class Step:
    """One step of the DAG: what it takes, writes and returns, and where it runs.

    Attributes:
        name: The step's name: its component's function name (``record_refusal``; the task is
            ``record-refusal``).
        module: The module holding its ``Inputs``, ``Outputs`` and ``run``.
        description: One line: what the step does (its component's docstring starts with it).
        inputs: Its inputs, in the component's order.
        outputs: Its output artifacts.
        returns: The kind of its returned value (:data:`RETURN_TYPES`); empty: none.
        returns_doc: What the returned value is.
        branches: The conditions it runs under, outermost first; empty: every run.
        after: Steps it runs after without taking their outputs.
        gpu: It uses a GPU when it has one: it runs in the GPU image and, compiled for GPUs, on the
            GPU node pool.
    """

    name: str
    module: str
    description: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...] = ()
    returns: str = ""
    returns_doc: str = ""
    branches: tuple[Branch, ...] = ()
    after: tuple[str, ...] = ()
    gpu: bool = False

    def input(self, name: str) -> Input:
        """The input called ``name``; KeyError names the step when there is none."""
        return _named(self.inputs, name, f"input of step {self.name!r}")

    def output(self, name: str) -> Output:
        """The output called ``name``; KeyError names the step when there is none."""
        return _named(self.outputs, name, f"output of step {self.name!r}")


def _named(items: tuple[Any, ...], name: str, what: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} is called {name!r}")


@dataclass(frozen=True)
class StepResult:
    """What a step's ``run`` hands back: its returned value and what to note on its outputs.

    The component records it on the KFP artifacts (:func:`tunepipe.binding.record`); the
    in-process runner keeps the value alone. Every mapping is keyed by output name.

    Attributes:
        value: The returned value (the declared ``returns`` kind; a mapping for ``json``).
        metadata: Metadata to add to each output artifact.
        metrics: The scalars of each ``Metrics`` output (the Kubeflow UI compares runs on them).
        confusion_matrices: ``(classes, rows)`` of each ``ClassificationMetrics`` output drawn as a
            confusion matrix; empty rows draw nothing.
        roc_curves: ``fpr``, ``tpr`` and ``thresholds`` of each ``ClassificationMetrics`` output
            drawn as an ROC curve; an empty mapping draws nothing.
        uris: The folder each ``reference`` output points to: a local path (inside another output,
            it becomes that output's URI) or a URI.
    """

    value: Any = None
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    confusion_matrices: Mapping[str, tuple[list[str], list[list[int]]]] = field(default_factory=dict)
    roc_curves: Mapping[str, Mapping[str, list[float]]] = field(default_factory=dict)
    uris: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dag:
    """The steps in the order they run, and the run's outcome.

    Attributes:
        steps: Every step; a step's sources name only parameters and steps before it.
        parameters: The pipeline's parameters and their types, which inputs may name.
        outcome: The returned values (``"<step>.Output"``) of the steps that end a run, one of which
            ran: the pipeline's own output.
    """

    steps: tuple[Step, ...]
    parameters: Mapping[str, type]
    outcome: tuple[str, ...] = ()

    def step(self, name: str) -> Step:
        """The step called ``name``; KeyError lists the steps when there is none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step is called {name!r}; steps: {', '.join(step.name for step in self.steps)}")

    def replaced(self, step: Step) -> Dag:
        """This DAG with the step of the same name replaced by ``step`` (a team's variant, a test's)."""
        self.step(step.name)
        return Dag(tuple(step if old.name == step.name else old for old in self.steps), self.parameters,
                   self.outcome)

    def kind(self, source: str) -> str:
        """What ``source`` hands over: an artifact kind, or the type name of a value (``int``, ``dict``).

        Raises:
            KeyError: ``source`` names no parameter, step or output.
        """
        if source in (RUN_ID, RUN_NAME):
            return "str"
        step, dot, output = source.partition(".")
        if not dot:
            if source not in self.parameters:
                raise KeyError(f"no pipeline parameter is called {source!r}")
            return self.parameters[source].__name__
        if output == RETURNED:
            returns = self.step(step).returns
            if not returns:
                raise KeyError(f"step {step!r} returns nothing")
            return RETURN_TYPES[returns].__name__
        return str(self.step(step).output(output).kind)
