"""One KFP component per step of the DAG, derived from its declaration (:data:`tunepipe.dag.DAG`).

Each component's function is written from the step's declaration (:mod:`components.generate`):
its signature takes the step's inputs and outputs with their KFP types, and its body hands them to
:func:`tunepipe.binding.run_component`, which turns artifacts into the step's ``Inputs`` and
``Outputs``, runs it and records its result. The functions carry no image:
:func:`build_components` turns them into components for the image chosen at compile time, with
``install_kfp_package=False`` because the image already holds kfp and tunepipe, so nothing is
pip-installed when a pod starts. Through ``kfp.local.SubprocessRunner(use_venv=False)`` the same
bodies run in the current environment.

A team composes our steps in a pipeline of its own from :func:`build_components`, by step name
(``components.train`` or ``components["train"]``), as ``pipelines.pipeline`` does (docs/components.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kfp import dsl

from components.generate import step_function
from tunepipe import __version__
from tunepipe.dag import REFERENCE, load


def default_image() -> str:
    """The project image for this package version (a local tag; registries are given at compile)."""
    return f"tunepipe:{__version__}"


def step_functions(dag: str = REFERENCE) -> dict[str, Callable[..., Any]]:
    """Each step's component function by step name, before it is made a component (tests call them).

    Args:
        dag: Where the declaration is, ``module:attribute`` (default: tunepipe's); the functions'
            bodies import it from there when they run.
    """
    return {step.name: step_function(step, dag) for step in load(dag).steps}


class Components(Mapping[str, Any]):
    """The step components, built for their images, by step name: ``components.train`` or ``components["train"]``."""

    def __init__(self, built: Mapping[str, Any]) -> None:
        self._built = dict(built)

    def __getitem__(self, name: str) -> Any:
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built)

    def __len__(self) -> int:
        return len(self._built)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_built"][name]
        except KeyError:
            raise AttributeError(f"no step component is called {name!r}") from None


def build_components(image: str | None = None, gpu_image: str | None = None, dag: str = REFERENCE) -> Components:
    """Builds every step component of a DAG for its image.

    Args:
        image: Image of the CPU steps (default: :func:`default_image`).
        gpu_image: Image of the steps declared ``gpu`` (tune and train; default: ``image``).
        dag: Where the declaration is, ``module:attribute`` (default: tunepipe's); a team's own must
            be importable in the images too.
    """
    cpu = image or default_image()
    functions = step_functions(dag)
    return Components({
        step.name: dsl.component(functions[step.name], base_image=(gpu_image or cpu) if step.gpu else cpu,
                                 install_kfp_package=False)
        for step in load(dag).steps
    })
