"""Checkpoints, resume and the divergence guard of the engine (issue: training never loses work)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab import Input, Sequential, layers, load_model, optimizers
from cnnlab.engine.callbacks import BackupAndRestore
from cnnlab.engine.layers import clear_session
from cnnlab.engine.model import TrainingDiverged
from cnnlab.utils import to_categorical


def data(n: int = 96):
    rng = np.random.default_rng(0)
    x = rng.random((n, 6, 6, 1)).astype("float32")
    return x, to_categorical(
        (x[:, :3].sum(axis=(1, 2, 3)) > x[:, 3:].sum(axis=(1, 2, 3))).astype(int), 2
    )


def model(lr: float = 0.01, optimizer: str = "adam") -> Sequential:
    clear_session()  # the same layer names in every instance, as a restarted process would have
    m = Sequential(
        [
            Input(shape=(6, 6, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(2, activation="softmax"),
        ],
        seed=5,
    )
    m.compile(
        loss="categorical_crossentropy",
        optimizer=optimizers.get(optimizer, lr),
        metrics=["accuracy"],
    )
    return m


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    x, y = data()
    reference = model()
    full = reference.fit(x, y, batch_size=16, epochs=4, validation_split=0.25, verbose=0)

    first = model()
    first.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        validation_split=0.25,
        verbose=0,
        callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)],
    )  # "killed" after epoch 2
    resumed_model = model()
    resumed = resumed_model.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        validation_split=0.25,
        verbose=0,
        callbacks=[BackupAndRestore(tmp_path)],
    )
    for a, b in zip(reference.get_weights(), resumed_model.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert resumed.history == full.history
    assert len(resumed.epoch_seconds) == 4
    assert not (tmp_path / "checkpoint.cnnlab").exists()  # deleted once training finished


def test_checkpoint_of_another_model_is_refused(tmp_path):
    x, y = data()
    model().fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)],
    )
    other = Sequential(
        [Input(shape=(6, 6, 1)), layers.Flatten(), layers.Dense(2, activation="softmax")], seed=0
    )
    other.compile(loss="categorical_crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match="belongs to a different model"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])


def test_checkpoint_is_not_a_model_file(tmp_path):
    x, y = data()
    model().fit(
        x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)]
    )
    with pytest.raises(ValueError, match="not a cnnlab-model file"):
        load_model(tmp_path / "checkpoint.cnnlab")


def test_a_huge_learning_rate_trips_the_divergence_guard_and_names_the_layer(tmp_path):
    """Plain SGD at lr 1e6 through linear layers grows the weights geometrically until they
    overflow; the guard stops at the first NaN or infinity and names the layer."""
    x, y = data()
    clear_session()
    m = Sequential(
        [
            Input(shape=(6, 6, 1)),
            layers.Flatten(),
            layers.Dense(16),
            layers.Dense(2, activation="softmax"),
        ],
        seed=0,
    )
    m.compile(loss="categorical_crossentropy", optimizer=optimizers.SGD(1e6))
    with pytest.raises(
        TrainingDiverged,
        match=r"training diverged at epoch 1, batch \d+: .* of layer 'dense(_1)?'.*"
        r"Lower the learning rate \(now 1e\+06\)",
    ):
        m.fit(
            x,
            y,
            batch_size=16,
            epochs=20,
            verbose=0,
            callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)],
        )
    assert not (tmp_path / "checkpoint.cnnlab").exists()  # no finished epoch, so nothing saved
