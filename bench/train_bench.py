"""Benchmark: our train step against a bare ``model.fit``, and Hyperband against RandomSearch.

    .venv/bin/python bench/train_bench.py            # about 3 minutes on 2 busy CPU cores
    .venv/bin/python bench/train_bench.py --quick    # smaller, for a smoke check

Part 1 trains the same model on the same synthetic data twice, for the same number of epochs:
once through ``tunepipe.train.train_final`` (steps_per_execution 8, BackupAndRestore writing a
backup every epoch, ReduceLROnPlateau, durable early stopping with a patience that never fires)
and once with ``model.fit`` at Keras' defaults (steps_per_execution 1, no callbacks), both at the
same batch size. It prints training samples per second and their ratio (target: >= 0.9).

Part 2 spends the same epoch budget two ways on a harder synthetic task: Keras Tuner Hyperband
(max_epochs 9, factor 3: 75 epochs scheduled) and RandomSearch with as many full 9-epoch
trials as fit in that budget (8 trials, 72 epochs), and prints each one's best validation loss
and wall time. Every number is measured in this run; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from tunepipe.config import FloatRange, IntRange, SearchSpace, TrainingConfig, TuningConfig
from tunepipe.features import NumericFeature, PreprocessingSpec
from tunepipe.hyperband import hyperband_budget
from tunepipe.model import TabularHyperModel, gpu_visible, use_mixed_precision_on_gpu
from tunepipe.train import train_final
from tunepipe.tune import run_tuning, search_callbacks

FEATURES = [f"x{i}" for i in range(8)]


def synthetic(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two classes separated by a non-linear boundary with 10% label noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    score = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.5 * x[:, 3] ** 2 - 0.5
    labels = (score > 0).astype(np.int32)
    flip = rng.random(rows) < 0.1
    labels[flip] = 1 - labels[flip]
    return {name: x[:, [i]] for i, name in enumerate(FEATURES)}, labels


SPEC = PreprocessingSpec("classification", "y", [NumericFeature(n, n, 0.0, 1.0) for n in FEATURES], classes=["0", "1"])


def throughput(rows: int, epochs: int) -> dict[str, float]:
    fixed = SearchSpace(hidden_layers=2, units=64, activation=["relu"], dropout=0.1, l1=0.0, l2=1e-5,
                        optimizer=["adam"], learning_rate=1e-3, batch_size=[32])
    hypermodel, hp = TabularHyperModel(SPEC, fixed), keras_tuner.HyperParameters()
    hypermodel.build(hp)
    train, validation = synthetic(rows, 0), synthetic(rows // 5, 1)
    config = TrainingConfig(max_epochs=epochs, patience=epochs + 1)
    with tempfile.TemporaryDirectory() as backup:
        started = time.perf_counter()
        train_final(hypermodel, hp, train, validation, config, seed=0, backup_dir=Path(backup))
        ours = time.perf_counter() - started
    keras.utils.set_random_seed(0)
    model = hypermodel.build(hp)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # Keras defaults: steps_per_execution=1
    started = time.perf_counter()
    model.fit(*train, batch_size=32, epochs=epochs, validation_data=validation, verbose=0)
    bare = time.perf_counter() - started
    samples = rows * epochs
    return {"ours": samples / ours, "bare": samples / bare, "ours_s": ours, "bare_s": bare}


SEARCH = SearchSpace(hidden_layers=IntRange(min=1, max=3), units=IntRange(min=16, max=128, step=16),
                     activation=["relu", "tanh"], dropout=FloatRange(min=0.0, max=0.3, step=0.1),
                     learning_rate=FloatRange(min=1e-4, max=3e-2, sampling="log"), batch_size=[32, 64])


def tuner_comparison(rows: int, max_epochs: int) -> dict[str, tuple[float, float, int]]:
    train, validation = synthetic(rows, 2), synthetic(rows // 3, 3)
    hypermodel = TabularHyperModel(SPEC, SEARCH)
    config = TuningConfig(max_epochs=max_epochs, factor=3, patience=3)
    budget = hyperband_budget(max_epochs, 3)
    results = {}
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        hb = run_tuning(hypermodel, train, validation, config, seed=0, work_dir=Path(work) / "hb")
        results["Hyperband"] = (hb.best_score, time.perf_counter() - started, budget.epochs)
        keras.utils.set_random_seed(0)
        trials = budget.epochs // max_epochs
        random = keras_tuner.RandomSearch(
            hypermodel, objective="val_loss", max_trials=trials, seed=0, directory=str(Path(work) / "rs"),
            project_name="random",
        )
        started = time.perf_counter()
        random.search(*train, validation_data=validation, epochs=max_epochs, callbacks=search_callbacks(config),
                      verbose=0)
        best = random.oracle.get_best_trials(1)[0].score
        results["RandomSearch"] = (float(best), time.perf_counter() - started, trials * max_epochs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and budget (smoke check)")
    args = parser.parse_args()
    rows, epochs, tune_rows, max_epochs = (4000, 3, 600, 3) if args.quick else (12000, 6, 1500, 9)
    policy = use_mixed_precision_on_gpu()
    print(f"backend {keras.config.backend()}, GPU visible: {gpu_visible()}, policy {policy}, "
          f"{platform.processor() or platform.machine()}")
    t = throughput(rows, epochs)
    print(f"\n## Train throughput ({rows} rows, {epochs} epochs, batch 32, 2x64 MLP)\n")
    print("| run | settings | wall s | samples/s |\n|---|---|---|---|")
    print(f"| tunepipe train_final | steps_per_execution 8, BackupAndRestore, ReduceLROnPlateau, durable early "
          f"stopping | {t['ours_s']:.1f} | {t['ours']:,.0f} |")
    print(f"| bare model.fit | Keras defaults: steps_per_execution 1, no callbacks | {t['bare_s']:.1f} | "
          f"{t['bare']:,.0f} |")
    print(f"\nratio ours / bare: {t['ours'] / t['bare']:.2f}x (target >= 0.9x)")
    print(f"\n## Hyperband vs RandomSearch at the same epoch budget ({tune_rows} rows, max_epochs {max_epochs})\n")
    print("| tuner | epochs budget | best val_loss | wall s |\n|---|---|---|---|")
    for name, (score, seconds, spent) in tuner_comparison(tune_rows, max_epochs).items():
        print(f"| {name} | {spent} | {score:.4f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
