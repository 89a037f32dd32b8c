"""Which multi-worker training path works with Keras 3 and our model: evidence from two local processes.

Issue 18 asks, before any launcher is written, which Keras 3 multi-worker path trains our model
with the TensorFlow we ship. This script runs each candidate as 2 worker processes on loopback
(CPU), every worker on the same rows, and a single process as the reference:

- ``tensorflow``: ``tf.distribute.MultiWorkerMirroredStrategy`` from ``TF_CONFIG`` (what a
  Training Operator ``TFJob`` or a Kubeflow Trainer ``TrainJob`` sets up), model built in its scope;
- ``jax``: Keras' distribution API (``keras.distribution.DataParallel`` over every process's
  devices) after ``jax.distributed.initialize`` (CPU collectives: gloo). Run only where JAX is
  installed (``pip install jax``); otherwise reported as not run.

Every path builds the penguins model with :class:`~tunepipe.modelling.model.TabularHyperModel`
and fits it through its own ``fit`` (batch size and steps per execution as the train step uses
them), the global batch and learning rate scaled by :mod:`tunepipe.modelling.scaling`' rules.
A path "works" when both workers finish, report 2 replicas (or devices) in sync, end with the
same weights, and score within noise of the single process on the test split.

    .venv/bin/python bench/multiworker.py [--epochs 30] [--output runs/bench/multiworker.md]

A worker that has not finished after ``--timeout`` seconds (default 300) counts as hung.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import prepare_splits, table

REPO = Path(__file__).resolve().parents[1]
PENGUINS = REPO / "src" / "tunepipe" / "datasets" / "penguins.csv"
SEED = 42
WORKERS = 2
HP = {"hidden_layers": 2, "units": 32, "activation": "relu", "dropout": 0.1, "l1": 0.0, "l2": 1e-4,
      "optimizer": "adam", "learning_rate": 1e-2, "batch_size": 16}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _fit_and_score(folders: dict[str, str], replicas: int, epochs: int, steps: int | None = None,
                   shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """Builds the model (in whatever distribution scope is active), fits it and scores the test split.

    ``steps``: steps per call into the backend; None lets the hypermodel's own fit choose (the
    train step's rule, :func:`~tunepipe.modelling.hyperparameters.steps_per_execution_for`).
    ``shard``: ``(index, count)``: this process feeds every count-th training row from index on,
    in batches of the global batch / count (Keras' JAX distribution without auto-sharding).
    """
    import keras
    import keras_tuner
    import numpy as np

    from tunepipe.config import SearchSpace
    from tunepipe.data.features import model_inputs, targets
    from tunepipe.data.preprocess import read_spec
    from tunepipe.data.split import Split
    from tunepipe.modelling.hyperparameters import steps_per_execution_for, use_steps_per_execution
    from tunepipe.modelling.model import TabularHyperModel
    from tunepipe.modelling.scaling import scaled_for_replicas

    spec = read_spec(folders["spec"])
    hypermodel = TabularHyperModel(spec, SearchSpace())
    tuned = keras_tuner.HyperParameters()
    keras.utils.set_random_seed(SEED)  # every process draws the same initial weights (JAX checks it)
    hypermodel.build(tuned)  # registers the space
    tuned.values.update(HP)
    hp = scaled_for_replicas(tuned, replicas)
    keras.utils.set_random_seed(SEED)
    train, test = Split.open(folders["train"]).frame(), Split.open(folders["test"]).frame()
    model = hypermodel.build(hp)
    x, y = model_inputs(train, spec), targets(train, spec)
    if shard is not None:
        index, count = shard
        x, y = {name: values[index::count] for name, values in x.items()}, y[index::count]
        steps = steps or steps_per_execution_for(len(y), int(hp.get("batch_size")) // count, epochs)
        use_steps_per_execution(model, steps)
        history = model.fit(x, y, batch_size=int(hp.get("batch_size")) // count, epochs=epochs, verbose=0,
                            shuffle=False)
    elif steps is None:
        history = hypermodel.fit(hp, model, x, y, epochs=epochs, verbose=0)
        steps = steps_per_execution_for(len(y), int(hp.get("batch_size")), epochs)
    else:
        use_steps_per_execution(model, steps)
        history = model.fit(x, y, batch_size=int(hp.get("batch_size")), epochs=epochs, verbose=0)
    if shard is not None:  # the trained variables span every process: score a local copy of them
        values = [np.asarray(variable.value.addressable_data(0)) for variable in model.weights]
        keras.distribution.set_distribution(None)
        model = hypermodel.build(hp)
        model.set_weights(values)
    probabilities = np.asarray(model.predict(model_inputs(test, spec), verbose=0))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == targets(test, spec)))
    weights = np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)) for w in model.weights])
    return {"loss": float(history.history["loss"][-1]), "accuracy": accuracy, "weights": weights.tolist(),
            "global_batch": int(hp.get("batch_size")), "steps": steps}


def _patch_symbolic_build(tf: Any) -> None:
    """Experiment, not used by tunepipe: Keras' first-batch build from one replica's batch.

    Keras 3.15's ``TensorFlowTrainer._maybe_symbolic_build`` averages the first distributed batch
    with ``strategy.reduce("MEAN", batch)`` only to read its shapes; ``CollectiveAllReduceStrategy``
    refuses that structure ("Attempt to convert a value (PerReplica...) to a Tensor").
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if self._distribute_strategy is None:
            return
        for _, _, batches in iterator or []:
            data_batch = tree.map_structure(
                lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, next(batches))
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build


def _patch_scalar_mean(tf: Any) -> None:
    """Experiment, not used by tunepipe: multi-worker means of scalar logs without ``axis=0``.

    Keras 3.15's ``reduce_per_replica`` reduces every log across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on the scalar loss ("Invalid reduction
    dimension 0 for input with 0 dimensions").
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica


# name -> (processes, backend, Keras patches applied, steps per call: None = the train step's rule)
PATHS: dict[str, tuple[int, str, int, int | None]] = {
    "single process": (1, "tensorflow", 0, None),
    "MultiWorkerMirroredStrategy": (WORKERS, "tensorflow", 0, None),
    "MWMS + build patch": (WORKERS, "tensorflow", 1, None),
    "MWMS + 2 patches, 1 step per call": (WORKERS, "tensorflow", 2, 1),
    "MWMS + 2 patches, 8 steps per call": (WORKERS, "tensorflow", 2, 8),
    "JAX DataParallel": (WORKERS, "jax", 0, None),
    "JAX DataParallel, 8 steps per call": (WORKERS, "jax", 0, 8),
}


def _tensorflow_worker(index: int, ports: list[int], folders: dict[str, str], epochs: int, patches: int,
                       steps: int | None) -> dict[str, Any]:
    import tensorflow as tf

    if len(ports) == 1:
        return {**_fit_and_score(folders, 1, epochs, steps), "in_sync": 1}
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                                          "task": {"type": "worker", "index": index}})
    for patch in (_patch_symbolic_build, _patch_scalar_mean)[:patches]:
        patch(tf)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        result = _fit_and_score(folders, strategy.num_replicas_in_sync, epochs, steps)
    return {**result, "in_sync": strategy.num_replicas_in_sync}


def _jax_worker(index: int, ports: list[int], folders: dict[str, str], epochs: int, patches: int,
                steps: int | None) -> dict[str, Any]:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{ports[0]}", num_processes=len(ports), process_id=index)
    import keras

    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    return {**_fit_and_score(folders, len(devices), epochs, steps, (index, len(ports))), "in_sync": len(devices)}


def worker_main(argv: list[str]) -> None:
    """``--worker PATH INDEX PORTS FOLDERS EPOCHS OUT``: one process of a path; its result as JSON in OUT."""
    path, index, ports, folders, epochs, out = argv
    _, backend, patches, steps = PATHS[path]
    run = _jax_worker if backend == "jax" else _tensorflow_worker
    started = time.perf_counter()
    result = run(int(index), [int(p) for p in ports.split(",")], json.loads(folders), int(epochs), patches, steps)
    result["seconds"] = time.perf_counter() - started
    Path(out).write_text(json.dumps(result))


def _run_path(path: str, folders: dict[str, str], epochs: int, timeout: float, work: Path,
              jax_path: Path | None) -> dict[str, Any]:
    """Starts the workers of ``path`` (:data:`PATHS`) and waits; what they reported, or how they failed."""
    processes, backend, _, _ = PATHS[path]
    if backend == "jax" and jax_path is None:
        return {"outcome": "not run: give --jax-path (a folder where `pip install --target` put jax[cpu])",
                "workers": []}
    ports = _free_ports(processes)
    python_path = [str(jax_path)] if backend == "jax" and jax_path else []
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join([*python_path, str(REPO / "src")])}
    children, outputs = [], []
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower())
    for index in range(processes):
        out, log = work / f"{slug}-{index}.json", work / f"{slug}-{index}.log"
        outputs.append((out, log))
        command = [sys.executable, __file__, "--worker", path, str(index), ",".join(map(str, ports)),
                   json.dumps(folders), str(epochs), str(out)]
        children.append(subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in children:
                other.kill()
            return {"outcome": f"hung: no result after {timeout:.0f} s", "workers": []}
    failed = [(child.returncode, log) for child, (_, log) in zip(children, outputs, strict=True) if child.returncode]
    if failed:
        code, log = failed[0]
        return {"outcome": f"failed (exit {code}): {_error_line(log.read_text())}", "workers": []}
    return {"outcome": "finished", "workers": [json.loads(out.read_text()) for out, _ in outputs]}


def _error_line(text: str) -> str:
    """The exception a worker's traceback ends with (its type and the message's first 300 characters)."""
    start = max((match.start() for match in re.finditer(r"^[\w.]+(Error|Exception): ", text, flags=re.M)),
                default=None)
    if start is None:
        return " / ".join(line for line in text.splitlines() if line.strip())[-300:]
    return " ".join(text[start:].split())[:300]


def _row(path: str, run: dict[str, Any], reference: dict[str, Any] | None) -> list[object]:
    import numpy as np

    workers = run["workers"]
    if not workers:
        return [path, PATHS[path][0], run["outcome"], *[""] * 8]
    first = workers[0]
    spread = max(float(np.max(np.abs(np.subtract(w["weights"], first["weights"])))) for w in workers)
    versus = f"{first['accuracy'] - reference['accuracy']:+.3f}" if reference and reference is not first else ""
    return [path, len(workers), run["outcome"], first["in_sync"], first["global_batch"], first["steps"],
            f"{first['loss']:.4f}", f"{first['accuracy']:.3f}", versus, f"{spread:.1e}",
            f"{max(w['seconds'] for w in workers):.1f}"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--jax-path", type=Path, default=None,
                        help="folder holding jax[cpu] (pip install --target DIR 'jax[cpu]'); the JAX path needs it")
    parser.add_argument("--output", type=Path, default=None, help="also write the table (Markdown) here")
    parser.add_argument("--logs", type=Path, default=None, help="keep every worker's output in this folder")
    args = parser.parse_args()
    jax_path = args.jax_path.resolve() if args.jax_path else None
    with tempfile.TemporaryDirectory(prefix="tunepipe-multiworker-") as scratch:
        work = args.logs or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        folders = prepare_splits(work / "data", str(PENGUINS), "species", SEED)
        runs = {path: _run_path(path, folders, args.epochs, args.timeout, work, jax_path) for path in PATHS}
    reference = (runs["single process"]["workers"] or [None])[0]
    header = ["path", "processes", "outcome", "replicas in sync", "global batch", "steps per call", "final loss",
              "test accuracy", "vs single", "weight spread", "seconds"]
    text = table(header, [_row(path, run, reference) for path, run in runs.items()])
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
