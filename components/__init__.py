"""One thin KFP component per pipeline step.

Each module defines a plain Python function with KFP artifact annotations; its body turns
artifacts into folders, calls its own step module (``tunepipe.<step>_step``) and records metadata. The
functions carry no image: :func:`build_components` turns them into components for the image
chosen at compile time, with ``install_kfp_package=False`` because the image already holds
kfp and tunepipe, so nothing is pip-installed when a pod starts. Through
``kfp.local.SubprocessRunner(use_venv=False)`` the same bodies run in the current environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfp import dsl

from components.deploy import deploy
from components.evaluate import evaluate
from components.export import export
from components.fingerprint import fingerprint
from components.ingest import ingest
from components.preprocess import preprocess
from components.refusal import record_refusal
from components.train import train
from components.tune import tune
from components.validate import validate
from tunepipe import __version__

STEP_FUNCTIONS = {
    "validate": validate,
    "fingerprint": fingerprint,
    "ingest": ingest,
    "preprocess": preprocess,
    "tune": tune,
    "train": train,
    "evaluate": evaluate,
    "export": export,
    "record_refusal": record_refusal,
    "deploy": deploy,
}
# Steps that need a GPU when one is requested: they run in the GPU image.
GPU_STEPS = frozenset({"tune", "train"})


def default_image() -> str:
    """The project image for this package version (a local tag; registries are given at compile)."""
    return f"tunepipe:{__version__}"


@dataclass(frozen=True)
class Components:
    """The step components, built for their images."""

    validate: Any
    fingerprint: Any
    ingest: Any
    preprocess: Any
    tune: Any
    train: Any
    evaluate: Any
    export: Any
    record_refusal: Any
    deploy: Any


def build_components(image: str | None = None, gpu_image: str | None = None) -> Components:
    """Builds every step component for its image.

    Args:
        image: Image of the CPU steps (default: :func:`default_image`).
        gpu_image: Image of the tune and train steps (default: ``image``).
    """
    cpu = image or default_image()
    built = {
        name: dsl.component(
            function, base_image=(gpu_image or cpu) if name in GPU_STEPS else cpu, install_kfp_package=False
        )
        for name, function in STEP_FUNCTIONS.items()
    }
    return Components(**built)
