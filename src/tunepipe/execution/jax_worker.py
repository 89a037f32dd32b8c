"""One process of multi-worker final training: Keras' ``DataParallel`` on JAX over ``jax.distributed``.

Run in every pod of the train step's ``TrainJob`` (:mod:`tunepipe.execution.k8s.training`) as
``python -m tunepipe.execution.jax_worker`` with ``KERAS_BACKEND=jax``. Why this path: with
Keras 3.15 and TensorFlow 2.21, ``MultiWorkerMirroredStrategy`` fails inside Keras' own ``fit``,
while Keras' distribution API on JAX trains our model in sync (docs/tuning.md, "Several nodes:
which Keras 3 multi-worker path works (evidence)", and ``bench/multiworker.py``).

What every process does:

1. joins the others with ``jax.distributed.initialize`` (CPU collectives through gloo), from
   ``--coordinator``, ``--processes`` and ``--process-id``: the Kubeflow Trainer JAX runtime's
   :data:`COORDINATOR_ENV`, :data:`PROCESSES_ENV` and :data:`PROCESS_ID_ENV`, which the TrainJob
   hands over as ``$(NAME)`` arguments (:func:`engine_arguments`); one process by default;
2. reads the staged folders ``<location>/inputs/{train,validation,preprocessing,best}`` (an
   object-store prefix is downloaded through :class:`~tunepipe.storage.tuner_state.StoreSync`;
   a local folder, as in the tests, is read where it is);
3. builds the tuned model with :func:`~tunepipe.modelling.chooser.hypermodel_for`, scaled for the
   global batch by :func:`~tunepipe.modelling.scaling.scaled_for_replicas` (one replica per
   process: the global batch is the tuned batch x processes, the learning rate grows by
   ``sqrt(N)`` for Adam/RMSprop and ``N`` for SGD), every process from the same seed;
4. fits its own shard (every N-th row from its index on, all shards cut to the same length so
   every process runs the same number of steps) with ``auto_shard_dataset=False``; validation
   is sharded the same way, and its loss is computed over the global batch, so every process
   sees the same ``val_loss`` and early stopping and the plateau schedule decide alike;
5. process 0 writes ``model.keras`` (the best epoch's weights, in a model built without the
   distribution, so it loads anywhere) and :data:`~tunepipe.artifacts.WORKERS_RESULT_FILE`
   (history, best epoch, processes, global batch) to ``<location>/output``.

Early stopping is :class:`_SyncedEarlyStopping`: the train step's rule
(:class:`~tunepipe.modelling.stopping.EarlyStoppingRule`) with the weights kept in memory rather
than in a durable backup, and copied from this process's replica, since the variables of a model
trained this way span every process. There is no per-epoch backup
here: a worker lost mid-run fails the TrainJob and a retried train step starts again.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.config.base import validate_section
from tunepipe.modelling.stopping import EarlyStoppingRule

log = logging.getLogger(__name__)

# Set by Kubeflow Trainer's JAX plugin (pkg/runtime/framework/plugins/jax/jax.go) in every node pod.
COORDINATOR_ENV, PROCESSES_ENV, PROCESS_ID_ENV = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"
# Below the staging location: what the train step uploads, and what process 0 writes back.
INPUTS, OUTPUT, BEST = artifacts.TUNER_INPUTS_DIR, "output", "best"
MODULE = "tunepipe.execution.jax_worker"


def join_processes(coordinator: str, processes: int, index: int) -> tuple[int, int]:
    """``(process id, processes)``; joins the others first when there are several."""
    if processes < 2:
        return 0, 1
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(coordinator, num_processes=processes, process_id=index)
    return index, processes


def engine_arguments() -> list[str]:
    """``--coordinator``, ``--processes``, ``--process-id`` from the engine's environment variables.

    Kubernetes expands ``$(NAME)`` in a container's arguments from its environment, so the worker
    reads them as arguments, like every other setting (the core reads no environment).
    """
    return ["--coordinator", f"$({COORDINATOR_ENV})", "--processes", f"$({PROCESSES_ENV})",
            "--process-id", f"$({PROCESS_ID_ENV})"]


def shard(arrays: tuple[dict[str, np.ndarray], np.ndarray], index: int, count: int) -> tuple[dict, np.ndarray]:
    """Every ``count``-th row from ``index`` on, of the first ``rows // count * count`` rows.

    Equal shards give every process the same number of batches (a process with one batch more
    would wait for the others forever); at most ``count - 1`` rows are left out.
    """
    x, y = arrays
    end = len(y) // count * count
    return {name: values[index:end:count] for name, values in x.items()}, y[index:end:count]


def local_copy(variable: Any) -> np.ndarray:
    """This process's replica of a (replicated) variable, as numpy."""
    value = variable.value
    return np.asarray(value.addressable_data(0) if hasattr(value, "addressable_data") else value)


class _SyncedEarlyStopping(keras.callbacks.Callback):
    """The train step's early-stopping rule on ``val_loss``, best weights kept locally.

    Every process sees the same global ``val_loss``, so all stop at the same epoch.
    """

    def __init__(self, patience: int, min_delta: float) -> None:
        super().__init__()
        self.rule = EarlyStoppingRule(patience, min_delta)
        self.best_weights: list[np.ndarray] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = dict(logs or {})
        logs.setdefault("learning_rate", float(local_copy(self.model.optimizer._learning_rate)))
        if self.rule.observe(epoch, logs):
            self.best_weights = [local_copy(variable) for variable in self.model.weights]
        elif self.rule.stop:
            self.model.stop_training = True


def _inputs(location: str, scratch: Path) -> Path:
    from tunepipe.storage.tuner_state import state_sync_for

    sync = state_sync_for(f"{location}/{INPUTS}")
    if sync is None:
        return Path(location) / INPUTS
    sync.download_all(scratch)
    return scratch


def _write_output(location: str, model: Any, result: dict[str, Any]) -> None:
    from tunepipe.storage import atomic
    from tunepipe.storage.tuner_state import state_sync_for

    sync = state_sync_for(f"{location}/{OUTPUT}")
    with tempfile.TemporaryDirectory(prefix="tunepipe-output-") as scratch:
        folder = Path(scratch) if sync is not None else Path(location) / OUTPUT
        folder.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(folder / artifacts.MODEL_FILE) as partial:
            model.save(partial)
        atomic.write_text(folder / artifacts.WORKERS_RESULT_FILE, json.dumps(result, indent=2))
        if sync is not None:
            sync.upload_changed(folder)


def train(location: str, training: TrainingConfig, space: SearchSpace, seed: int,
          process: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """Trains this process's shard in sync with the others; process 0 writes the output.

    Args:
        location: The staging folder or object-store prefix (``inputs/`` below it; ``output/`` written).
        training: Epoch bound, patience, ``min_delta`` and the plateau schedule.
        process: ``(process id, processes)`` after :func:`join_processes`.
    """
    from tunepipe.data.preprocess import read_spec
    from tunepipe.data.split import Split
    from tunepipe.modelling.chooser import hypermodel_for
    from tunepipe.modelling.scaling import BATCH_SIZE, scaled_for_replicas, with_values
    from tunepipe.modelling.tune import load_hyperparameters

    index, count = process
    with tempfile.TemporaryDirectory(prefix="tunepipe-inputs-") as scratch:
        inputs = _inputs(location, Path(scratch))
        spec = read_spec(inputs / artifacts.INPUTS_SPEC_DIR)
        tuned = load_hyperparameters(inputs / BEST / artifacts.BEST_HYPERPARAMETERS_FILE)
        train_rows = shard(Split.open(inputs / artifacts.TRAIN).arrays(spec), index, count)
        validation = shard(Split.open(inputs / artifacts.VALIDATION).arrays(spec), index, count)
    scaled = scaled_for_replicas(tuned, count)
    per_process = with_values(scaled, {BATCH_SIZE: int(scaled.get(BATCH_SIZE)) // count})
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    hypermodel = hypermodel_for(spec, space)
    keras.utils.set_random_seed(seed)  # the same initial weights in every process (JAX checks it)
    model = hypermodel.build(scaled)
    stopper = _SyncedEarlyStopping(training.patience, training.min_delta)
    callbacks = [stopper]
    if training.lr_schedule == "plateau":
        callbacks.insert(0, keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=training.lr_factor, patience=training.lr_patience, min_lr=1e-6, verbose=0))
    hypermodel.fit(per_process, model, *train_rows, validation_data=validation, epochs=training.max_epochs,
                   callbacks=callbacks, verbose=0)
    keras.distribution.set_distribution(None)
    final = hypermodel.build(scaled)  # on this process's devices only: saved and loaded anywhere
    final.set_weights(stopper.best_weights or [local_copy(variable) for variable in model.weights])
    rule = stopper.rule
    result = {"history": rule.history, artifacts.META_BEST_EPOCH: rule.best_epoch, "processes": count,
              "devices": len(devices), "global_batch": int(scaled.get(BATCH_SIZE)),
              "learning_rate": float(scaled.get("learning_rate")), "train_rows_per_process": len(train_rows[1])}
    log.info("train: process %d of %d: %d epochs, best epoch %d (val_loss %.4f)", index, count,
             len(rule.history.get("loss", [])), rule.best_epoch, rule.best)
    if index == 0:
        _write_output(location, final, result)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--location", required=True, help="staging folder or gs:// / s3:// prefix")
    parser.add_argument("--training", required=True, help="the training section as JSON")
    parser.add_argument("--search-space", required=True, help="the search space as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--coordinator", default="", help="host:port of process 0 (several processes)")
    parser.add_argument("--processes", type=int, default=1, help="JAX processes in all (default 1)")
    parser.add_argument("--process-id", type=int, default=0, help="this process's index (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs this process's part of the training; returns the exit status."""
    args = _parser().parse_args(argv)  # before the heavy imports: a bad command fails at once
    from tunepipe.step_logging import configure_logging

    configure_logging()
    training = validate_section(TrainingConfig, json.loads(args.training), "--training")
    space = validate_section(SearchSpace, json.loads(args.search_space), "--search-space")
    train(args.location, training, space, args.seed, join_processes(args.coordinator, args.processes, args.process_id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
