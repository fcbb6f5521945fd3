"""Keras 3's .keras files (cnnlab.keras_format), tested against real Keras 3 (torch backend).

Both ways, for a Sequential CNN, a functional model with a residual Add, a BatchNormalization
model (inference, non-trivial moving statistics) and a Sequential nested in a functional
model: a model saved by one side and loaded by the other predicts the same to 1e-5. Compile
settings and the optimizer's state survive; a legacy .h5 full-model file loads; unsupported
layers, truncated or altered files and symlinks are handled as the module promises.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from cnnlab import keras_format
from cnnlab.engine import layers
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.model import Model, Sequential, load_model

KERAS_INSTALLED = importlib.util.find_spec("keras") is not None and importlib.util.find_spec("torch") is not None
needs_keras = [
    pytest.mark.skipif(not KERAS_INSTALLED, reason="real Keras 3 (and torch, its backend here) is not installed"),
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]
TOLERANCE = 1e-5  # float32 predictions, the same weights on both sides


def keras_test(test: Any) -> Any:
    """Skip (cleanly) only where Keras 3 or torch is not installed."""
    for mark in reversed(needs_keras):
        test = mark(test)
    return test


@pytest.fixture(autouse=True)
def registered() -> None:
    keras_format.register()


def keras_module() -> Any:
    from cnnlab.reference.keras import import_keras

    return import_keras()


def inputs(shape: tuple[int, ...], count: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32)


def assert_same_predictions(ours: Any, theirs: Any, x: np.ndarray) -> None:
    expected = np.asarray(theirs.predict(x, verbose=0))
    got = np.asarray(ours.predict(x, verbose=0))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    assert np.abs(expected).max() > 1e-3  # not a trivially zero output


def perturb_keras_weights(model: Any, seed: int = 1) -> None:
    """Keras's own random weights, with biases, BN scale/shift and moving statistics made non-trivial."""
    rng = np.random.default_rng(seed)
    new = []
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        if "variance" in weight.path:
            new.append(rng.uniform(0.5, 2.0, value.shape).astype(np.float32))
        elif value.ndim == 1:
            new.append(rng.standard_normal(value.shape).astype(np.float32) * 0.5)
        else:
            new.append(value)
    model.set_weights(new)


# ----------------------------------------------------------------- the model pairs
def cnnlab_cnn() -> Sequential:
    model = Sequential([
        layers.Input((10, 10, 2)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(5, (2, 2), strides=2, padding="same", activation="tanh"),
        layers.AveragePooling2D(pool_size=1),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(6, activation="sigmoid"),
        layers.Activation("relu"),
        layers.Dense(3, activation="softmax"),
    ], seed=3)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_cnn(keras: Any) -> Any:
    kl = keras.layers
    model = keras.Sequential([
        keras.Input((10, 10, 2)), kl.Conv2D(4, 3, activation="relu"), kl.MaxPooling2D(),
        kl.Conv2D(5, (2, 2), strides=2, padding="same", activation="tanh"), kl.AveragePooling2D(pool_size=1),
        kl.Flatten(), kl.Dropout(0.5), kl.Dense(6, activation="sigmoid"), kl.Activation("relu"),
        kl.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.002), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def cnnlab_residual() -> Model:
    x = layers.Input((6, 6, 3), name="image")
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = layers.Conv2D(4, 1)(x)  # the shortcut, a projection
    y = layers.Add()([a, b])
    y = layers.GlobalAveragePooling2D()(y)
    return Model(x, layers.Dense(2)(y), name="residual", seed=4)


def keras_residual(keras: Any) -> Any:
    kl = keras.layers
    x = keras.Input((6, 6, 3), name="image")
    a = kl.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = kl.Conv2D(4, 1)(x)
    y = kl.GlobalAveragePooling2D()(kl.Add()([a, b]))
    return keras.Model(x, kl.Dense(2)(y))


def cnnlab_batchnorm() -> Sequential:
    model = Sequential([layers.Input((5, 5, 2)), layers.Conv2D(3, 2), layers.BatchNormalization(),
                        layers.Activation("relu"), layers.Flatten(), layers.Dense(4), layers.BatchNormalization(),
                        layers.Dense(2, activation="softmax")], seed=5)
    rng = np.random.default_rng(6)
    for layer in model.layers:
        for key, value in layer.weights_dict().items():
            if layer.name.startswith("batch_normalization"):
                value[...] = rng.uniform(0.5, 2.0, value.shape) if key == "moving_variance" else rng.standard_normal(value.shape)
    return model


def keras_batchnorm(keras: Any) -> Any:
    kl = keras.layers
    return keras.Sequential([keras.Input((5, 5, 2)), kl.Conv2D(3, 2), kl.BatchNormalization(), kl.Activation("relu"),
                             kl.Flatten(), kl.Dense(4), kl.BatchNormalization(), kl.Dense(2, activation="softmax")])


def cnnlab_nested() -> Model:
    inner = Sequential([layers.Input((8,)), layers.Dense(3, activation="relu")], name="inner", seed=7)
    x = layers.Input((4,))
    left, right = layers.Dense(4, name="left")(x), layers.Dense(4, name="right", activation="tanh")(x)
    return Model(x, inner(layers.Concatenate()([left, right])), name="outer", seed=8)


def keras_nested(keras: Any) -> Any:
    kl = keras.layers
    inner = keras.Sequential([keras.Input((8,)), kl.Dense(3, activation="relu")], name="inner")
    x = keras.Input((4,))
    merged = kl.Concatenate()([kl.Dense(4, name="left")(x), kl.Dense(4, name="right", activation="tanh")(x)])
    return keras.Model(x, inner(merged))


PAIRS = {  # name: (cnnlab model, Keras model of the same architecture, input shape)
    "sequential_cnn": (cnnlab_cnn, keras_cnn, (10, 10, 2)),
    "functional_residual": (cnnlab_residual, keras_residual, (6, 6, 3)),
    "batchnorm": (cnnlab_batchnorm, keras_batchnorm, (5, 5, 2)),
    "nested_sequential": (cnnlab_nested, keras_nested, (4,)),
}


# ------------------------------------------------------------------- both directions
@keras_test
@pytest.mark.parametrize("name", list(PAIRS))
def test_cnnlab_model_saved_as_keras_loads_in_keras_with_the_same_predictions(tmp_path: Path, name: str) -> None:
    make_ours, _, shape = PAIRS[name]
    ours = make_ours()
    ours.save(tmp_path / "m.keras")
    theirs = keras_module().models.load_model(tmp_path / "m.keras")
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in ours.layers]
    assert_same_predictions(ours, theirs, inputs(shape))


@keras_test
@pytest.mark.parametrize("name", list(PAIRS))
def test_keras_model_saved_by_keras_loads_in_cnnlab_with_the_same_predictions(tmp_path: Path, name: str) -> None:
    _, make_theirs, shape = PAIRS[name]
    theirs = make_theirs(keras_module())
    perturb_keras_weights(theirs)
    theirs.save(tmp_path / "m.keras")
    ours = load_model(tmp_path / "m.keras")
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers]
    assert_same_predictions(ours, theirs, inputs(shape, seed=2))
