"""Every device of the train step's node: synchronous data parallelism with ``MirroredStrategy``.

Which API, and why: on the TensorFlow backend our images run, a Keras 3 model built inside
``tf.distribute.MirroredStrategy(...).scope()`` keeps that strategy, and ``model.fit`` runs each
step on every replica with ``strategy.run``, splitting each global batch of numpy rows between
them and summing the gradients (Keras' ``backend/tensorflow/trainer.py``). Keras' own
distribution API (``keras.distribution.DataParallel``) is implemented for JAX only: its
TensorFlow ``distribution_lib`` is a prototype marked "DO NOT USE" in Keras 3.15. So the train
step uses ``MirroredStrategy`` on TensorFlow, and one device on any other backend.

Which devices (``training.placement``, :func:`tunepipe.execution.placement.training_devices`): 0
(``auto``, the default, or ``node`` without a count) takes every GPU the step sees when it sees
two or more, else the one default device; 1 (``step``) one device; ``N`` (``node`` with N) takes
the first N GPUs, or, on a machine without GPUs, splits the CPU into N logical devices. The last
is a rehearsal, slower than one device: it runs the very code a GPU node runs (the same strategy,
batch and learning-rate rules), which is how the tests check it without a GPU.

Batch size and learning rate: :mod:`tunepipe.modelling.scaling` (the tuned batch per replica, the
learning rate scaled for the global batch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner

from tunepipe.errors import TunepipeError
from tunepipe.modelling.scaling import BATCH_SIZE, LEARNING_RATE


@dataclass(frozen=True)
class Replicas:
    """The devices final training runs on.

    Attributes:
        devices: TensorFlow device names (``/gpu:0``, ...; ``/cpu:0``, ... when the CPU is
            split); empty for the backend's default single device.
        kind: ``gpu``, ``cpu`` (logical CPU devices) or ``default``.
    """

    devices: tuple[str, ...] = ()
    kind: str = "default"

    @property
    def count(self) -> int:
        """How many replicas train (1 on the default device)."""
        return max(1, len(self.devices))


def choose_replicas(requested: int) -> Replicas:
    """The devices for ``requested`` of them (0: every GPU; see the module docstring).

    Must run before TensorFlow's runtime starts when the CPU is to be split (the train step
    calls it first thing); a process whose runtime already runs keeps the logical devices it has.

    Raises:
        TunepipeError: More GPUs requested than the step sees, replicas on a backend other than
            TensorFlow, or a CPU split asked for after TensorFlow started with another one.
    """
    if keras.config.backend() != "tensorflow":
        if requested > 1:
            raise TunepipeError(f"training.placement: {requested} devices: several devices need the TensorFlow "
                                f"backend, not {keras.config.backend()}")
        return Replicas()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if requested > len(gpus):
            raise TunepipeError(f"training.placement: {requested} devices: the train step sees only "
                                f"{len(gpus)} GPU(s); request as many GPUs for it (pipeline parameter gpu_count)")
        count = requested or len(gpus)
        return Replicas(tuple(f"/gpu:{index}" for index in range(count)), "gpu") if count > 1 else Replicas()
    if requested <= 1:
        return Replicas()
    return Replicas(_split_cpu(tf, requested), "cpu")


def _split_cpu(tf: Any, count: int) -> tuple[str, ...]:
    """``count`` logical CPU devices, configured now (TensorFlow's runtime must not have started)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:  # the runtime started already: only an identical split will do
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise TunepipeError(f"training.placement: {count} devices: TensorFlow already started with {have} "
                                "CPU device(s) in this process; choose the devices before anything runs on "
                                "TensorFlow") from error
    return tuple(f"/cpu:{index}" for index in range(count))


@contextlib.contextmanager
def replica_scope(replicas: Replicas) -> Iterator[None]:
    """Builds and trains the models made inside it on ``replicas``; nothing on one device."""
    if replicas.count < 2:
        yield
        return
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(list(replicas.devices))
    with strategy.scope():
        yield


def describe_replicas(replicas: Replicas, tuned: keras_tuner.HyperParameters, scaled: keras_tuner.HyperParameters,
                      in_sync: int) -> dict[str, Any]:
    """What the train step records of its devices (history.json's model; the model card).

    ``in_sync`` is the count the trained model's own strategy reports, not the one requested.
    """
    return {
        "replicas": in_sync, "devices": replicas.kind, "global_batch": int(scaled.values[BATCH_SIZE]),
        "batch_per_replica": int(tuned.values[BATCH_SIZE]),
        "learning_rate": float(scaled.values[LEARNING_RATE]), "tuned_learning_rate": float(tuned.values[LEARNING_RATE]),
    }
