"""Final training: early stopping, best weights and saved outputs."""

from __future__ import annotations

import json

import keras
import keras_tuner
import numpy as np
import pytest

from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, TrainingConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.modelling import train as train_module
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.train import load_training_state, save_training, save_training_state, train_final

pytestmark = pytest.mark.unit

SPEC = PreprocessingSpec(
    "classification", "y", [NumericFeature(name, name, 0.0, 1.0) for name in ("a", "b", "c")],
    classes=["0", "1"],
)


def _space(learning_rate: float) -> SearchSpace:
    return SearchSpace(
        hidden_layers=IntRange(min=1, max=1), units=IntRange(min=64, max=64), activation=["relu"],
        dropout=FloatRange(min=0.0, max=0.0), l2=FloatRange(min=1e-6, max=1e-6, sampling="log"),
        learning_rate=FloatRange(min=learning_rate, max=learning_rate), batch_size=[8],
    )


def _noise(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features unrelated to labels: a big model overfits the training split and validation loss rises."""
    rng = np.random.default_rng(seed)
    features = {name: rng.normal(size=(rows, 1)).astype(np.float32) for name in ("a", "b", "c")}
    return features, rng.integers(0, 2, size=rows).astype(np.int32)


def _train(learning_rate: float, config: TrainingConfig, backup_dir):
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(SPEC, _space(learning_rate))
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    validation = _noise(64, 1)
    result = train_final(hypermodel, hp, _noise(64, 0), validation, config, seed=0, backup_dir=backup_dir)
    return result, validation


def test_best_weights_are_restored(tmp_path) -> None:
    result, (x_val, y_val) = _train(3e-2, TrainingConfig(max_epochs=5, patience=5, lr_schedule="none"), tmp_path)
    val_loss = result.history["val_loss"]
    assert len(val_loss) == 5
    assert result.best_epoch == int(np.argmin(val_loss)) + 1
    assert result.best_epoch < len(val_loss), "the data was chosen so the best epoch is not the last"
    # the returned model scores the best epoch's validation loss, not the last epoch's
    loss = result.model.evaluate(x_val, y_val, verbose=0, batch_size=8)
    loss = loss[0] if isinstance(loss, list) else loss
    assert loss == pytest.approx(min(val_loss), rel=1e-4)
    assert loss != pytest.approx(val_loss[-1], rel=1e-4)


def test_early_stopping_on_a_plateau(tmp_path) -> None:
    # learning rate 0: the weights never change, so validation loss is flat from the first epoch
    result, _ = _train(0.0, TrainingConfig(max_epochs=5, patience=2), tmp_path)
    val_loss = result.history["val_loss"]
    assert len(val_loss) == 3  # epoch 1, then `patience` epochs without improvement
    assert len(result.history["loss"]) == 3
    assert result.best_epoch == 1


def test_save_training_writes_model_and_history(tmp_path) -> None:
    result, (x_val, _) = _train(1e-2, TrainingConfig(max_epochs=2, patience=2), tmp_path / "backup")
    model_path, history_path = tmp_path / artifacts.MODEL_FILE, tmp_path / artifacts.HISTORY_FILE
    save_training(result, model_path, history_path)
    saved = json.loads(history_path.read_text())
    assert saved["best_epoch"] == result.best_epoch
    assert saved["history"]["val_loss"] == result.history["val_loss"]
    reloaded = keras.models.load_model(model_path)
    np.testing.assert_allclose(
        reloaded.predict(x_val, verbose=0), result.model.predict(x_val, verbose=0), atol=1e-6
    )


def test_learning_rate_is_cut_on_a_plateau(tmp_path) -> None:
    config = TrainingConfig(max_epochs=4, patience=10, lr_schedule="plateau", lr_factor=0.5, lr_patience=1)
    result, _ = _train(3e-2, config, tmp_path)
    rates = result.history["learning_rate"]
    assert rates[0] == pytest.approx(3e-2)
    assert rates[-1] < rates[0], "validation loss rises on noise, so the rate must have been cut"
    unchanged, _ = _train(3e-2, config.model_copy(update={"lr_schedule": "none"}), tmp_path / "none")
    assert unchanged.history["learning_rate"] == pytest.approx([3e-2] * 4)


def test_min_delta_makes_small_falls_in_validation_loss_count_as_no_improvement(tmp_path) -> None:
    """training.min_delta is Keras' EarlyStopping rule: a fall smaller than it is not an improvement."""
    rng = np.random.default_rng(0)
    features = {name: rng.normal(size=(128, 1)).astype(np.float32) for name in ("a", "b", "c")}
    labels = (features["a"][:, 0] > 0).astype(np.int32)  # learnable: validation loss falls from epoch to epoch
    train, validation = ({k: v[:96] for k, v in features.items()}, labels[:96]), \
        ({k: v[96:] for k, v in features.items()}, labels[96:])

    def fit(min_delta: float, folder: str):
        keras.utils.set_random_seed(0)
        hypermodel = TabularHyperModel(SPEC, _space(1e-2))
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        config = TrainingConfig(max_epochs=6, patience=2, lr_schedule="none", min_delta=min_delta)
        return train_final(hypermodel, hp, train, validation, config, seed=0, backup_dir=tmp_path / folder)

    plain = fit(0.0, "plain")
    assert plain.best_epoch > 1 and min(plain.history["val_loss"]) < plain.history["val_loss"][0]
    strict = fit(10.0, "strict")  # no fall of a cross-entropy this small can reach 10
    assert len(strict.history["val_loss"]) == 3  # epoch 1, then `patience` epochs without an improvement
    assert strict.best_epoch == 1


class _BackupFiles(keras.callbacks.Callback):
    """After each epoch's backup (it runs after the training callbacks): the bytes of both weight files."""

    def __init__(self, folder) -> None:
        super().__init__()
        self.folder, self.seen = folder, []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        latest = next((self.folder / artifacts.BACKUP_KERAS_DIR).glob("latest.weights.*"))
        self.seen.append((latest.read_bytes(), (self.folder / artifacts.BACKUP_BEST_WEIGHTS_FILE).read_bytes()))


def test_weights_are_serialised_once_per_epoch_and_shared_with_the_best(tmp_path, monkeypatch) -> None:
    """An improving epoch's backup is a copy of the best-weights file just written, not a second save;
    the model ends with the best epoch's weights whether or not that was the last epoch."""
    saves = []
    original = train_module.save_training_state

    def counted(*args, **kwargs):
        saves.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "save_training_state", counted)
    rng = np.random.default_rng(0)
    features = {name: rng.normal(size=(96, 1)).astype(np.float32) for name in ("a", "b", "c")}
    labels = (features["a"][:, 0] > 0).astype(np.int32)  # learnable: validation loss falls every epoch
    data = (features, labels)
    for learning_rate, folder in ((1e-2, "falls"), (3e-2, "noise")):
        keras.utils.set_random_seed(0)
        hypermodel = TabularHyperModel(SPEC, _space(learning_rate))
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        files = _BackupFiles(tmp_path / folder)
        hypermodel.extra_callbacks = [files]
        saves.clear()
        train, validation = (data, data) if folder == "falls" else (_noise(64, 0), _noise(64, 1))
        config = TrainingConfig(max_epochs=5, patience=10, lr_schedule="none")
        result = train_final(hypermodel, hp, train, validation, config, seed=0, backup_dir=tmp_path / folder)
        val_loss = result.history["val_loss"]
        improved = [loss < min(val_loss[:epoch], default=float("inf")) for epoch, loss in enumerate(val_loss)]
        assert len(saves) == len(val_loss)  # one serialisation per epoch, not one more per improvement
        for epoch, (latest, best) in enumerate(files.seen):
            assert (latest == best) == improved[epoch]
        loss = result.model.evaluate(*validation, verbose=0, batch_size=8)
        assert (loss[0] if isinstance(loss, list) else loss) == pytest.approx(min(val_loss), rel=1e-4)
        if folder == "falls":
            assert result.best_epoch == len(val_loss)  # the last epoch was the best: nothing read back
        else:
            assert result.best_epoch < len(val_loss)


def test_training_state_round_trips_weights_and_optimizer(tmp_path) -> None:
    """save_training_state keeps what save_weights keeps: weights, optimizer step, learning rate, moments."""
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(SPEC, _space(1e-2))
    hp = keras_tuner.HyperParameters()
    trained = hypermodel.build(hp)
    x, y = _noise(64, 0)
    hypermodel.fit(hp, trained, x, y, epochs=2, verbose=0)
    trained.optimizer.learning_rate.assign(5e-3)  # as ReduceLROnPlateau leaves it
    save_training_state(trained, tmp_path / "state.npz")
    trained.save_weights(tmp_path / "state.weights.h5")
    for path in (tmp_path / "state.npz", tmp_path / "state.weights.h5"):  # the .h5: a backup from before
        fresh = hypermodel.build(hp)
        load_training_state(fresh, path)
        for mine, theirs in zip([*fresh.weights, *fresh.optimizer.variables],
                                [*trained.weights, *trained.optimizer.variables], strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    other = TabularHyperModel(SPEC, _space(1e-2).model_copy(update={"units": IntRange(min=8, max=8)}))
    with pytest.raises(ValueError, match="shape"):
        load_training_state(other.build(keras_tuner.HyperParameters()), tmp_path / "state.npz")


@pytest.mark.parametrize("best_so_far", [10.0, 0.0])
def test_a_backup_written_by_save_weights_still_resumes(tmp_path, best_so_far: float) -> None:
    """A backup an earlier tunepipe left (Keras' .h5 weights) resumes: the epochs after it run, from its weights,
    and its best weights are restored when no later epoch beats them (best_so_far 0.0)."""
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(SPEC, _space(1e-2))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, *_noise(64, 0), epochs=2, verbose=0)  # 2 epochs of 8 steps
    backup = tmp_path / "old"
    (backup / artifacts.BACKUP_KERAS_DIR).mkdir(parents=True)
    model.save_weights(backup / artifacts.BACKUP_KERAS_DIR / "latest.weights.h5")
    model.save_weights(backup / "best.weights.h5")
    (backup / artifacts.BACKUP_KERAS_DIR / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 0}))
    history = {"loss": [0.7, 0.6], "val_loss": [0.6, best_so_far]}
    state = {"best": best_so_far, "best_epoch": 2, "wait": 0, "history": history}
    (backup / artifacts.BACKUP_STATE_FILE).write_text(json.dumps(state))
    result, _ = _train(1e-2, TrainingConfig(max_epochs=4, patience=10, lr_schedule="none"), backup)
    assert result.resumed_from_epoch == 2
    assert result.history["loss"][:2] == [0.7, 0.6] and len(result.history["loss"]) == 4
    assert result.best_epoch == (2 if best_so_far == 0.0 else int(np.argmin(result.history["val_loss"][2:])) + 3)
    # the optimizer's step count travels with the weights: 8 steps per epoch up to the best epoch, the first
    # two of them only in the .h5 backup
    assert int(keras.ops.convert_to_numpy(result.model.optimizer.iterations)) == 8 * result.best_epoch
