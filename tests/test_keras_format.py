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
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from cnnlab import keras_format
from cnnlab.engine import layers, losses, optimizers
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.model import Model, load_model
from cnnlab.engine.sequential import Sequential

KERAS_INSTALLED = (
    importlib.util.find_spec("keras") is not None and importlib.util.find_spec("torch") is not None
)
needs_keras = [
    pytest.mark.skipif(
        not KERAS_INSTALLED, reason="real Keras 3 (and torch, its backend here) is not installed"
    ),
    pytest.mark.torch,
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
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
    """Keras's own random weights, with biases, BN scale/shift and moving statistics made
    non-trivial."""
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
    model = Sequential(
        [
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
        ],
        seed=3,
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_cnn(keras: Any) -> Any:
    kl = keras.layers
    model = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            kl.Conv2D(4, 3, activation="relu"),
            kl.MaxPooling2D(),
            kl.Conv2D(5, (2, 2), strides=2, padding="same", activation="tanh"),
            kl.AveragePooling2D(pool_size=1),
            kl.Flatten(),
            kl.Dropout(0.5),
            kl.Dense(6, activation="sigmoid"),
            kl.Activation("relu"),
            kl.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.002),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
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
    model = Sequential(
        [
            layers.Input((5, 5, 2)),
            layers.Conv2D(3, 2),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.Flatten(),
            layers.Dense(4),
            layers.BatchNormalization(),
            layers.Dense(2, activation="softmax"),
        ],
        seed=5,
    )
    rng = np.random.default_rng(6)
    for layer in model.layers:
        for key, value in layer.weights_dict().items():
            if key == "moving_variance":
                value[...] = rng.uniform(0.5, 2.0, value.shape)
            elif layer.name.startswith("batch_normalization"):
                value[...] = rng.standard_normal(value.shape)
    return model


def keras_batchnorm(keras: Any) -> Any:
    kl = keras.layers
    return keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            kl.Conv2D(3, 2),
            kl.BatchNormalization(),
            kl.Activation("relu"),
            kl.Flatten(),
            kl.Dense(4),
            kl.BatchNormalization(),
            kl.Dense(2, activation="softmax"),
        ]
    )


def cnnlab_nested() -> Model:
    inner = Sequential(
        [layers.Input((8,)), layers.Dense(3, activation="relu")], name="inner", seed=7
    )
    x = layers.Input((4,))
    left, right = (
        layers.Dense(4, name="left")(x),
        layers.Dense(4, name="right", activation="tanh")(x),
    )
    return Model(x, inner(layers.Concatenate()([left, right])), name="outer", seed=8)


def keras_nested(keras: Any) -> Any:
    kl = keras.layers
    inner = keras.Sequential([keras.Input((8,)), kl.Dense(3, activation="relu")], name="inner")
    x = keras.Input((4,))
    merged = kl.Concatenate()(
        [kl.Dense(4, name="left")(x), kl.Dense(4, name="right", activation="tanh")(x)]
    )
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
def test_cnnlab_model_saved_as_keras_loads_in_keras_with_the_same_predictions(
    tmp_path: Path, name: str
) -> None:
    make_ours, _, shape = PAIRS[name]
    ours = make_ours()
    ours.save(tmp_path / "m.keras")
    theirs = keras_module().models.load_model(tmp_path / "m.keras")
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in ours.layers]
    assert_same_predictions(ours, theirs, inputs(shape))


@keras_test
@pytest.mark.parametrize("name", list(PAIRS))
def test_keras_model_saved_by_keras_loads_in_cnnlab_with_the_same_predictions(
    tmp_path: Path, name: str
) -> None:
    _, make_theirs, shape = PAIRS[name]
    theirs = make_theirs(keras_module())
    perturb_keras_weights(theirs)
    theirs.save(tmp_path / "m.keras")
    ours = load_model(tmp_path / "m.keras")
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [type(layer).__name__ for layer in ours.layers] == [
        type(layer).__name__ for layer in theirs.layers
    ]
    assert_same_predictions(ours, theirs, inputs(shape, seed=2))


# ----------------------------------------------------------------- compile settings
@keras_test
def test_compile_settings_and_optimizer_state_reach_keras(tmp_path: Path) -> None:
    ours = cnnlab_cnn()
    ours.compile(
        optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9),
        loss=losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = inputs((10, 10, 2), count=8)
    ours.fit(
        x,
        np.eye(3, dtype=np.float32)[np.arange(8) % 3],
        batch_size=4,
        epochs=1,
        verbose=0,
        shuffle=False,
    )
    ours.save(tmp_path / "m.keras")
    theirs = keras_module().models.load_model(tmp_path / "m.keras")
    assert type(theirs.optimizer).__name__ == "SGD"
    assert theirs.optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert float(theirs.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    assert int(theirs.optimizer.iterations.numpy()) == 2
    assert (
        type(theirs.loss).__name__ == "CategoricalCrossentropy"
        and theirs.loss.get_config()["from_logits"] is True
    )
    assert theirs.get_compile_config()["metrics"] == ["accuracy"]
    first_kernel_momentum = np.asarray(theirs.optimizer.variables[2].numpy())
    velocity = ours.optimizer.slots[f"{ours.layers[0].name}/kernel"]["velocity"]
    np.testing.assert_allclose(first_kernel_momentum, velocity, atol=1e-7)
    assert (
        np.abs(first_kernel_momentum).max() > 0
    )  # the momentum of two real steps, not fresh zeros


@keras_test
def test_compile_settings_and_optimizer_state_come_from_keras(tmp_path: Path) -> None:
    keras = keras_module()
    theirs = keras_cnn(keras)
    x, y = inputs((10, 10, 2), count=8), np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    theirs.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    theirs.save(tmp_path / "m.keras")
    ours = load_model(tmp_path / "m.keras")
    assert type(ours.optimizer).__name__ == "RMSprop"
    assert ours.optimizer.learning_rate == 0.002
    assert ours.optimizer.iterations == 2
    assert type(ours.loss).__name__ == "CategoricalCrossentropy"
    assert [metric.name for metric in ours.metrics] == ["accuracy"]
    velocities = [np.asarray(v.numpy()) for v in theirs.optimizer.variables[2:]]
    ours_velocities = [slots["velocity"] for slots in ours.optimizer.slots.values()]
    assert len(ours_velocities) == len(velocities) == 8
    for got, expected in zip(ours_velocities, velocities):
        np.testing.assert_allclose(got, expected, atol=1e-7)
    assert load_model(tmp_path / "m.keras", compile=False).optimizer is None


# ------------------------------------------------------------------ other files
@keras_test
def test_legacy_h5_full_model_file_loads_with_the_same_predictions(tmp_path: Path) -> None:
    keras = keras_module()
    theirs = keras_batchnorm(keras)
    theirs.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    perturb_keras_weights(theirs, seed=3)
    theirs.save(tmp_path / "m.h5")  # Keras 3 writes the legacy (Keras 2) layout for .h5
    ours = load_model(tmp_path / "m.h5")
    assert (
        type(ours.optimizer).__name__ == "Adam"
        and type(ours.loss).__name__ == "CategoricalCrossentropy"
    )
    assert_same_predictions(ours, theirs, inputs((5, 5, 2), seed=4))


@keras_test
def test_a_keras_file_with_an_unsupported_layer_is_refused_naming_it(tmp_path: Path) -> None:
    keras = keras_module()
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    model.save(tmp_path / "lstm.keras")
    with pytest.raises(
        UnsupportedKerasFeature,
        match=r"lstm\.keras: layer class LSTM \(layer 'lstm.*'\) is not supported by cnnlab; "
        r"supported: .*Conv2D",
    ):
        load_model(tmp_path / "lstm.keras")


def test_a_truncated_file_is_refused_naming_it(tmp_path: Path) -> None:
    cnnlab_cnn().save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError,
        match=r"cut\.keras: not a Keras \.keras file \(not a zip archive; damaged or trunc",
    ):
        load_model(tmp_path / "cut.keras")


def rewrite_member(source: Path, target: Path, member: str, change: Any) -> None:
    """Copy a .keras archive, passing one member's bytes through change()."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            new.writestr(name, change(data) if name == member else data)


def test_damaged_weights_and_configs_that_do_not_fit_them_are_refused(tmp_path: Path) -> None:
    cnnlab_cnn().save(tmp_path / "m.keras")
    rewrite_member(
        tmp_path / "m.keras", tmp_path / "h5.keras", "model.weights.h5", lambda data: data[:200]
    )
    with pytest.raises(ValueError, match=r"h5\.keras: damaged HDF5 weights"):
        load_model(tmp_path / "h5.keras")

    def wider_dense(data: bytes) -> bytes:
        config = json.loads(data)
        config["config"]["layers"][-1]["config"]["units"] = 4
        return json.dumps(config).encode()

    rewrite_member(tmp_path / "m.keras", tmp_path / "units.keras", "config.json", wider_dense)
    with pytest.raises(
        ValueError,
        match=r"units\.keras: 'dense.*' weight 0 has shape \(6, 3\) in the file, "
        r"the config needs \(6, 4\)",
    ):
        load_model(tmp_path / "units.keras")
    rewrite_member(
        tmp_path / "m.keras", tmp_path / "json.keras", "config.json", lambda data: data[:-5]
    )
    with pytest.raises(ValueError, match=r"json\.keras: damaged config\.json"):
        load_model(tmp_path / "json.keras")


def test_links_inside_the_weights_file_are_not_followed(tmp_path: Path) -> None:
    model = cnnlab_cnn()
    model.save(tmp_path / "m.keras")

    def kernel_as_soft_link(data: bytes) -> bytes:
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "a") as h5:
            del h5["layers/conv2d/vars/0"]
            h5["layers/conv2d/vars/0"] = h5py.SoftLink("/layers/conv2d_1/vars/0")
        return buffer.getvalue()

    rewrite_member(
        tmp_path / "m.keras", tmp_path / "link.keras", "model.weights.h5", kernel_as_soft_link
    )
    with pytest.raises(
        ValueError,
        match=r"link\.keras: .*weight 0 is missing from the weights file \(or is a link\)",
    ):
        load_model(tmp_path / "link.keras")


def test_saving_refuses_a_symlink_without_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "m.keras").symlink_to(victim)
    model = cnnlab_cnn()
    with pytest.raises(
        ValueError, match=r"m\.keras is a symbolic link"
    ):  # issue 15: links are refused, not replaced
        model.save(tmp_path / "m.keras")
    assert victim.read_text() == "keep me" and (tmp_path / "m.keras").is_symlink()
    (tmp_path / "m.keras").unlink()
    model.save(tmp_path / "m.keras")
    assert zipfile.is_zipfile(tmp_path / "m.keras")
    members = sorted(zipfile.ZipFile(tmp_path / "m.keras").namelist())
    assert members == ["config.json", "metadata.json", "model.weights.h5"]
    x = inputs((10, 10, 2))
    np.testing.assert_allclose(
        load_model(tmp_path / "m.keras").predict(x, verbose=0),
        model.predict(x, verbose=0),
        atol=0,
        rtol=0,
    )


def test_saving_legacy_h5_is_refused_with_the_formats_that_work(tmp_path: Path) -> None:
    with pytest.raises(
        UnsupportedKerasFeature,
        match=r"m\.h5: cnnlab writes Keras's \.keras format, not legacy \.h5",
    ):
        cnnlab_cnn().save(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


KERAS2_DENSE = {
    "class_name": "Dense",
    "config": {
        "name": "dense",
        "trainable": True,
        "batch_input_shape": [None, 3],
        "dtype": "float32",
        "units": 2,
        "activation": "softmax",
        "use_bias": True,
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
    },
}  # Keras 2's layout: the input shape on the first layer
KERAS2_TRAINING = {
    "loss": "categorical_crossentropy",
    "metrics": [["accuracy"]],
    "optimizer_config": {
        "class_name": "Adam",
        "config": {
            "name": "Adam",
            "learning_rate": 0.01,
            "decay": 0.0,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
    },
}


def write_keras2_h5(path: Path, kernel: np.ndarray, bias: np.ndarray) -> None:
    """A Keras 2 .h5 file of one Dense layer, written by hand: weight names with ":0"."""
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "s", "layers": [KERAS2_DENSE]}}
        )
        h5.attrs["training_config"] = json.dumps(KERAS2_TRAINING)
        group = h5.create_group("model_weights/dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group["dense/kernel:0"], group["dense/bias:0"] = kernel, bias


def test_a_keras2_h5_file_loads_with_its_weights(tmp_path: Path) -> None:
    """Keras 2's layout, written by hand: the input shape on the first layer, weight names with
    ":0"."""
    rng = np.random.default_rng(9)
    kernel, bias = (
        rng.standard_normal((3, 2)).astype(np.float32),
        rng.standard_normal(2).astype(np.float32),
    )
    write_keras2_h5(tmp_path / "keras2.h5", kernel, bias)
    model = load_model(tmp_path / "keras2.h5")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    logits = x @ kernel + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), expected / expected.sum(axis=1, keepdims=True), atol=1e-6
    )
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.learning_rate == 0.01
    assert [metric.name for metric in model.metrics] == ["accuracy"]


def test_a_keras_file_whose_config_nests_100000_deep_is_one_clear_error(tmp_path):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", '{"a": ' * 100_000 + "1" + "}" * 100_000)
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ValueError, match="config.json: nested more than 64 levels deep"):
        load_model(path)
