"""The device policy: mixed precision where a GPU is visible, float32 elsewhere."""

from __future__ import annotations

import keras


def gpu_visible() -> bool:
    """Whether the Keras backend sees a GPU (TensorFlow or JAX; False on any other backend)."""
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
    if gpu_visible():
        keras.mixed_precision.set_global_policy("mixed_float16")
    return str(keras.mixed_precision.global_policy().name)
