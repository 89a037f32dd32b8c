"""The devices a step sees: GPU ids for pinning parallel processes, and the precision policy.

:func:`local_gpus` reads the GPU list without importing TensorFlow (``nvidia-smi -L``), so that
the layout of parallel work (trials, folds) is decided, and each spawned process pinned to its
GPU (:func:`pin_gpu`), before any runtime starts. :func:`use_mixed_precision_on_gpu` is the
device policy of training: mixed precision where a GPU is visible, float32 elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence


def visible_gpu_ids(listing: str) -> list[str]:
    """GPU ids from ``nvidia-smi -L``-style text (``GPU 0: ...`` lines); empty without GPUs."""
    return [line.split(":")[0].split()[1] for line in listing.splitlines() if line.startswith("GPU ")]


# GKE mounts the driver's tools here, outside the image's PATH.
NVIDIA_SMI = ("nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi")


def local_gpus() -> list[str]:
    """This machine's GPU ids according to ``nvidia-smi -L``; empty where it is missing."""
    for command in NVIDIA_SMI:
        try:
            listing = subprocess.run([command, "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        return visible_gpu_ids(listing)
    return []


def pin_gpu(gpu: str | None) -> None:
    """Makes this process see only GPU ``gpu`` (``None``: leaves what it inherited).

    For a worker process, before it imports TensorFlow; this module imports Keras only inside the
    functions that need it, so that a spawned process can run this first.
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def parallel_processes(gpus: Sequence[str], cpu_processes: int = 0) -> list[str | None]:
    """Where parallel work (trials, cross-validation folds) runs: one process per entry.

    Two or more GPUs: one process per GPU, pinned to it. Otherwise ``cpu_processes`` processes
    that share the CPU (``None`` entries); 0 or 1 means none: the caller works in its own process,
    which pays no second TensorFlow import. Each caller passes the CPU count its benchmark
    measured fastest.
    """
    if len(gpus) >= 2:
        return list(gpus)
    return [None] * cpu_processes if cpu_processes >= 2 else []


def gpu_visible() -> bool:
    """Whether the Keras backend sees a GPU (TensorFlow or JAX; False on any other backend)."""
    import keras  # here, not at the top: the rest of this module must not start a runtime

    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    return False


def use_mixed_precision_on_gpu() -> str:
    """Sets Keras' ``mixed_float16`` policy when a GPU is visible; returns the policy in force.

    Half-precision matmuls run on a GPU's tensor cores at several times the float32 rate; on a
    CPU they are slower, so the policy stays ``float32`` there. Output layers stay float32
    (see :class:`~tunepipe.modelling.model.TabularHyperModel`) so losses and probabilities
    keep full precision.
    """
    import keras

    if gpu_visible():
        keras.mixed_precision.set_global_policy("mixed_float16")
    return str(keras.mixed_precision.global_policy().name)
