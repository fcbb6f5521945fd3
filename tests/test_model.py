"""Sequential: Keras's summary, build-time shape errors, training, config and files."""

from __future__ import annotations

import functools
import json
import zipfile

import numpy as np
import pytest

from cnnlab import Input, Sequential, layers, load_model, optimizers
from cnnlab.engine.layers import clear_session
from cnnlab.utils import set_random_seed, to_categorical


@pytest.fixture(autouse=True)
def fresh_names():
    clear_session()
    yield
    set_random_seed(None)


def seed_cnn(seed: int | None = 0) -> Sequential:
    """The classic MNIST CNN of seed 003 and design.md."""
    return Sequential(
        [
            Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        seed=seed,
    )


def seed_dense(seed: int | None = 0) -> Sequential:
    """Seed 000's function approximator, written Keras 2 style with input_shape=."""
    return Sequential(
        [
            layers.Dense(64, activation="relu", input_shape=(2,)),
            layers.Dense(64, activation="relu"),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(2, activation="softmax"),
        ],
        seed=seed,
    )


def summary_lines(model: Sequential) -> list[str]:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return lines


def test_seed_cnn_summary_matches_keras():
    model = seed_cnn()
    rows = model.summary_rows()
    assert [(name, kind, shape, count) for name, kind, shape, count in rows] == [
        ("conv2d", "Conv2D", "(None, 26, 26, 32)", 320),
        ("max_pooling2d", "MaxPooling2D", "(None, 13, 13, 32)", 0),
        ("conv2d_1", "Conv2D", "(None, 11, 11, 64)", 18496),
        ("max_pooling2d_1", "MaxPooling2D", "(None, 5, 5, 64)", 0),
        ("flatten", "Flatten", "(None, 1600)", 0),
        ("dropout", "Dropout", "(None, 1600)", 0),
        ("dense", "Dense", "(None, 10)", 16010),
    ]
    text = "\n".join(summary_lines(model))
    assert "│ conv2d_1 (Conv2D)" in text and "18,496" in text
    assert " Total params: 34,826 (136.04 KB)" in text


def test_seed_dense_summary_matches_seed_000():
    model = seed_dense()
    assert [count for *_, count in model.summary_rows()] == [192, 4160, 0, 0, 130]
    assert model.count_params() == 4482
    assert model.layers[2].output_shape == (64,)


@pytest.mark.parametrize(
    "stack, message",
    [
        (
            [Input(shape=(3, 3, 32)), layers.Conv2D(8, (5, 5), name="conv2d_1")],
            r"Conv2D 'conv2d_1': kernel_size \(5, 5\) is larger than its input \(3, 3, 32\) with "
            r"padding='valid'",
        ),
        (
            [Input(shape=(4, 4, 1)), layers.MaxPooling2D(5, name="pool")],
            r"MaxPooling2D 'pool': pool_size \(5, 5\) is larger than its input \(4, 4, 1\).*zero "
            r"pixels",
        ),
        (
            [Input(shape=(10,)), layers.Conv2D(2, 3, name="c")],
            r"Conv2D 'c': expected an image .* rank 3 .* received shape \(10,\)",
        ),
    ],
)
def test_shapes_that_cannot_fit_fail_at_build_time(stack, message):
    with pytest.raises(ValueError, match=message):
        Sequential(stack)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: layers.Conv2D(0, 3), "filters must be a positive int"),
        (lambda: layers.Conv2D(4, (3, 0)), "kernel_size must be a positive int or a pair"),
        (lambda: layers.Conv2D(4, 3, padding="full"), "padding must be 'valid' or 'same'"),
        (lambda: layers.Dense(3, activation="swish9"), "unknown activation 'swish9'"),
        (lambda: layers.Dropout(1.0), r"rate must be in \[0, 1\)"),
        (lambda: layers.MaxPooling2D(2, strides=0), "strides must be a positive int"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_same_padding_keeps_the_size_and_strides_shrink_it():
    model = Sequential(
        [
            Input(shape=(9, 9, 1)),
            layers.Conv2D(2, 3, strides=2, padding="same"),
            layers.AveragePooling2D(2, padding="same"),
        ]
    )
    assert [layer.output_shape for layer in model.layers] == [(5, 5, 2), (3, 3, 2)]


def small_problem(n: int = 256, seed: int = 0):
    """Two easy classes of 6x6 images: a bright square on the left or on the right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.random((n, 6, 6, 1)).astype("float32") * 0.2
    for i, label in enumerate(labels):
        x[i, 1:5, (0 if label == 0 else 3) : (3 if label == 0 else 6), 0] += 1.0
    return x, to_categorical(labels, 2)


def tiny_cnn(seed: int = 0) -> Sequential:
    return Sequential(
        [
            Input(shape=(6, 6, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ],
        seed=seed,
    )


def test_fit_learns_and_reports_keras_history():
    x, y = small_problem()
    model = tiny_cnn()
    model.compile(
        loss="categorical_crossentropy", optimizer=optimizers.Adam(0.01), metrics=["accuracy"]
    )
    history = model.fit(x, y, batch_size=32, epochs=8, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 8 and len(history.epoch_seconds) == 8
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.95 and loss < 0.3
    assert model.predict(x[:7]).shape == (7, 2)


def test_validation_split_takes_the_last_fraction():
    x, y = small_problem(100)
    seen: list[int] = []
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    original_step = model.train_step
    model.train_step = lambda xb, yb: (seen.extend(xb[:, 0, 0, 0].tolist()), original_step(xb, yb))[
        1
    ]
    model.fit(x, y, batch_size=10, epochs=1, validation_split=0.25, verbose=0)
    assert sorted(seen) == sorted(x[:75, 0, 0, 0].tolist())


def test_same_seed_gives_byte_identical_weights_and_history():
    x, y = small_problem()
    runs = []
    for _ in range(2):
        model = Sequential(
            [
                Input(shape=(6, 6, 1)),
                layers.Conv2D(4, 3, activation="relu"),
                layers.Flatten(),
                layers.Dropout(0.3),
                layers.Dense(2, activation="softmax"),
            ],
            seed=42,
        )
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        assert a.tobytes() == b.tobytes()
    assert runs[0][1] == runs[1][1]


def test_set_random_seed_is_used_by_models_without_a_seed():
    set_random_seed(7)
    first = Sequential([Input(shape=(6, 6, 1)), layers.Conv2D(4, 3)])
    second = Sequential([Input(shape=(6, 6, 1)), layers.Conv2D(4, 3)])
    np.testing.assert_array_equal(first.get_weights()[0], second.get_weights()[0])
    set_random_seed(None)
    third = Sequential([Input(shape=(6, 6, 1)), layers.Conv2D(4, 3)])
    assert not np.array_equal(first.get_weights()[0], third.get_weights()[0])


def test_training_stays_float32():
    x, y = small_problem(64)
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(x.astype("float64"), y, batch_size=16, epochs=1, verbose=0)
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert all(layer.grads[k].dtype == np.float32 for layer in model.layers for k in layer.grads)
    assert model.predict(x).dtype == np.float32


def test_sparse_labels_train_like_one_hot():
    x, y = small_problem(64)
    weights = {}
    for loss, targets in (
        ("categorical_crossentropy", y),
        ("sparse_categorical_crossentropy", y.argmax(1)),
    ):
        model = tiny_cnn(seed=3)
        model.compile(loss=loss, optimizer="sgd", metrics=["accuracy"])
        model.fit(x, targets, batch_size=16, epochs=1, shuffle=False, verbose=0)
        weights[loss] = model.get_weights()
    for a, b in zip(*weights.values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_save_and_load_give_identical_predictions(tmp_path):
    x, y = small_problem(64)
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "model.cnnlab")
    loaded = load_model(tmp_path / "model.cnnlab")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == ["model.cnnlab"]  # no temporary file left


def test_model_file_holds_no_pickle(tmp_path):
    model = tiny_cnn()
    model.save(tmp_path / "m.cnnlab")
    with zipfile.ZipFile(tmp_path / "m.cnnlab") as archive:
        meta = json.loads(archive.read("meta.json"))
        assert meta["format"] == "cnnlab-model" and meta["format_version"] == 1
        for name in archive.namelist():
            assert name == "meta.json" or name.endswith(".npy")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a cnnlab model file|damaged"),
        (lambda p: p.write_bytes(b"\x80\x04\x95pickle"), "not a zip archive"),
    ],
)
def test_damaged_model_files_are_refused(tmp_path, damage, message):
    path = tmp_path / "m.cnnlab"
    tiny_cnn().save(path)
    damage(path)
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_altered_weights_fail_the_checksum(tmp_path):
    path = tmp_path / "m.cnnlab"
    tiny_cnn().save(path)
    data = bytearray(path.read_bytes())
    offset = data.index(b"\x93NUMPY") + 200  # inside the first array's data
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch|damaged"):
        load_model(path)


def test_config_round_trip_rebuilds_the_same_architecture():
    model = seed_cnn()
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = Sequential.from_config(config)
    assert rebuilt.summary_rows() == model.summary_rows()
    assert rebuilt.get_config() == config
    assert Sequential.from_config(config["layers"]).count_params() == 34826


def test_set_weights_checks_shapes():
    model = tiny_cnn()
    weights = model.get_weights()
    weights[0] = weights[0][..., :2]
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'conv2d': weight 'kernel' has shape \(3, 3, 1, 4\), received \(3, 3, 1, 2\)",
    ):
        model.set_weights(weights)


def test_input_without_channel_axis_gets_a_hint():
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(N, 6, 6, 1\), received \(3, 6, 6\) \(add the channel "
        r"axis",
    ):
        model.predict(np.zeros((3, 6, 6)))


def test_nan_inputs_are_refused_before_training():
    x, y = small_problem(32)
    x[3, 2, 2, 0] = np.nan
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        model.fit(x, y, verbose=0)


def test_progress_lines_look_like_keras(capsys):
    x, y = small_problem(64)
    model = tiny_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2"
    assert out[1].startswith("3/3 ━━━━━━━━━━━━━━━━━━━━ ")
    assert " - accuracy: " in out[1] and out[1].index("- loss:") < out[1].index("- val_accuracy:")


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([0, 2, 1]), [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert to_categorical(np.array([[1], [0]]), 3).shape == (2, 3)
    with pytest.raises(ValueError, match="out of range"):
        to_categorical([0, 5], 3)


def test_input_gradient_matches_finite_differences():
    from cnnlab.engine.config import set_floatx

    set_floatx("float64")
    try:
        model = Sequential(
            [
                Input(shape=(6, 6, 1)),
                layers.Conv2D(3, 3, activation="tanh"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(2),
            ],
            seed=1,
        )
        x = np.random.default_rng(0).random((1, 6, 6, 1))
        analytic = model.input_gradient(x, class_index=1)
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            step = np.zeros_like(x)
            step[index] = 1e-6
            numeric[index] = (model.predict(x + step)[0, 1] - model.predict(x - step)[0, 1]) / 2e-6
        np.testing.assert_allclose(analytic, numeric, atol=1e-7)
        assert model.layers[0].needs_input_grad is False  # restored after the saliency pass
    finally:
        set_floatx("float32")


def test_feature_maps_name_every_layer():
    maps = tiny_cnn().feature_maps(np.zeros((1, 6, 6, 1), np.float32))
    assert [(name, m.shape) for name, m in maps] == [
        ("conv2d", (1, 4, 4, 4)),
        ("max_pooling2d", (1, 2, 2, 4)),
        ("flatten", (1, 16)),
        ("dense", (1, 2)),
    ]


@pytest.mark.parametrize("loss", ["binary_crossentropy", "mse"])
def test_one_unit_output_accepts_flat_targets(loss):
    x = np.random.default_rng(0).random((40, 3)).astype("float32")
    y = (x.sum(axis=1) > 1.5).astype("float32")  # shape (N,), as Keras users pass it
    model = Sequential(
        [Input(shape=(3,)), layers.Dense(1, activation="sigmoid" if loss != "mse" else None)],
        seed=0,
    )
    model.compile(loss=loss, optimizer="adam")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    with pytest.raises(
        ValueError, match=r"y has shape \(40, 2\) but the model's output is \(N, 1\)"
    ):
        model.fit(x, np.zeros((40, 2)), verbose=0)


def test_a_model_without_weights_still_evaluates():
    model = Sequential([Input(shape=(4,)), layers.Activation("softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.fit(np.zeros((4, 4), "float32"), to_categorical([0, 1, 2, 3], 4), verbose=0)
    assert model.count_params() == 0


def rewrite_meta(path, change) -> None:
    """Rewrite meta.json inside a saved model, keeping every array as it was."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members["meta.json"])
    change(meta)
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda meta: meta.update(format_version=99), "format version 99 is not supported"),
        (lambda meta: meta.update(format="keras-model"), "not a cnnlab-model file"),
        (
            lambda meta: meta.update(arrays=[*meta["arrays"], "dense/extra"]),
            "array 'dense/extra' listed in the metadata is missing",
        ),
        (lambda meta: meta.pop("model_config"), r"meta\.json: field 'model_config' is missing"),
        (
            lambda meta: meta.update(model_config={"layers": [{"class_name": "Dense"}]}),
            "incomplete or damaged|Dense",
        ),
    ],
)
def test_model_files_with_wrong_metadata_are_refused(tmp_path, change, message):
    path = tmp_path / "m.cnnlab"
    tiny_cnn().save(path)
    rewrite_meta(path, change)
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_a_foreign_zip_is_refused(tmp_path):
    path = tmp_path / "m.cnnlab"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", "{}")
    with pytest.raises(ValueError, match=r"not a cnnlab file \(no meta.json inside\)"):
        load_model(path)


def test_terminate_on_nan_stops_after_the_batch_where_the_guard_would_raise():
    """A learning rate of 1e30 makes the loss infinite in the first batches: without TerminateOnNaN
    the divergence guard raises; with it, training stops at the end of that batch, as in Keras."""
    from cnnlab.engine.callbacks import TerminateOnNaN
    from cnnlab.engine.model import TrainingDiverged

    def exploding() -> Sequential:
        model = Sequential([Input(shape=(3,)), layers.Dense(2, activation="softmax")], seed=0)
        model.compile(optimizer=optimizers.SGD(learning_rate=1e30), loss="categorical_crossentropy")
        return model

    x, y = np.full((8, 3), 1e20, np.float32), to_categorical([0, 1] * 4, 2)
    history = exploding().fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])
    with pytest.raises(TrainingDiverged, match="training diverged at epoch 1"):
        exploding().fit(x, y, batch_size=2, epochs=3, verbose=0)


FUSED_CASES = {  # name -> (the layers before the pool, the pool, the fused step expected)
    "conv relu, tiling pool": (
        lambda: [layers.Conv2D(4, 3, activation="relu")],
        lambda: layers.MaxPooling2D(2),
        "ConvThenPool",
    ),
    "two convs, the second linear with strides and same padding, pool 3": (
        lambda: [layers.Conv2D(3, 2, activation="tanh"), layers.Conv2D(4, 3, strides=(1, 2))],
        lambda: layers.MaxPooling2D((2, 1)),
        "ConvThenPool",
    ),
    "conv relu without bias, same padding, pool 3 of stride 3": (
        lambda: [layers.Conv2D(5, 2, padding="same", use_bias=False, activation="relu")],
        lambda: layers.MaxPooling2D(3),
        "ConvThenPool",
    ),
    "conv relu, overlapping pool": (
        lambda: [layers.Conv2D(4, 3, activation="relu")],
        lambda: layers.MaxPooling2D(3, strides=2, padding="same"),
        "PoolThenReLU",
    ),
    "activation layer, tiling pool that leaves the last pixels out": (
        lambda: [layers.Conv2D(4, 3), layers.BatchNormalization(), layers.Activation("relu")],
        lambda: layers.MaxPooling2D(2),
        "PoolThenReLU",
    ),
    "conv, batch norm, relu, a pool that tiles all of the conv's output": (
        lambda: [layers.Conv2D(4, 2), layers.BatchNormalization(), layers.Activation("relu")],
        lambda: layers.MaxPooling2D(2),
        "ConvNormThenPool",
    ),
    "conv without bias, strides 2, same padding, batch norm, relu, pool 3 by 1": (
        lambda: [
            layers.Conv2D(3, 3, strides=(1, 2), padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ],
        lambda: layers.MaxPooling2D((3, 1)),
        "ConvNormThenPool",
    ),
    "conv, batch norm without gamma and beta, relu, pool 2 by 3": (
        lambda: [
            layers.Conv2D(3, (2, 4), use_bias=False),
            layers.BatchNormalization(center=False, scale=False, momentum=0.5),
            layers.Activation("relu"),
        ],
        lambda: layers.MaxPooling2D((2, 3)),
        "ConvNormThenPool",
    ),
    "conv, frozen batch norm (its moving statistics in training too), relu, pool": (
        lambda: [
            layers.Conv2D(4, 2),
            layers.BatchNormalization(trainable=False),
            layers.Activation("relu"),
        ],
        lambda: layers.MaxPooling2D(2),
        "ConvNormThenPool",
    ),
    "a conv, then conv, batch norm, relu, pool: ConvNormThenPool with an input gradient": (
        lambda: [
            layers.Conv2D(3, 1, activation="relu"),
            layers.Conv2D(4, 2),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ],
        lambda: layers.MaxPooling2D(2),
        "ConvNormThenPool",
    ),
    "conv, batch norm, then a conv with relu before the pool: not ConvNormThenPool": (
        lambda: [
            layers.Conv2D(4, 2),
            layers.BatchNormalization(),
            layers.Conv2D(3, 1, activation="relu"),
        ],
        lambda: layers.MaxPooling2D(2),
        "ConvThenPool",
    ),
    "activation layer, overlapping pool": (
        lambda: [layers.Conv2D(4, 3), layers.BatchNormalization(), layers.Activation("relu")],
        lambda: layers.MaxPooling2D(3, strides=2, padding="same"),
        "PoolThenReLU",
    ),
}


def layer_by_layer_step(model: Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The output of a training forward and every gradient, each layer run on its own."""
    out = x
    for layer in model.layers:  # one by one, as the model defines them
        out = layer.forward(out, training=True)
    grad = model.loss.gradient_before_activation(y, out)
    grad = model.layers[-1].backward_linear(grad)
    for layer in reversed(model.layers[:-1]):
        grad = layer.backward(grad)
    return out


@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_steps_give_the_layer_by_layer_results(case):
    """Sequential runs Conv2D + a tiling MaxPooling2D as one step (fused.ConvThenPool) and a ReLU
    layer + MaxPooling2D as linear part -> pool -> ReLU (fused.PoolThenReLU); outputs and every
    gradient must be those of the layers run one by one: bit for bit where the same products
    are computed, and to float32 rounding where ConvThenPool multiplies fewer rows in another
    order (the routing of every gradient is the same: a wrong pixel would be off by O(1))."""
    front, pool, expected = FUSED_CASES[case]
    model = Sequential(
        [Input(shape=(9, 9, 2)), *front(), pool(), layers.Flatten(), layers.Dense(3, "softmax")],
        seed=0,
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert [type(step).__name__ for step in model.steps].count(expected) == 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 9, 9, 2)).astype(np.float32)
    y = to_categorical(rng.integers(0, 3, 6), 3)
    check = np.testing.assert_array_equal
    if expected in ("ConvThenPool", "ConvNormThenPool"):
        check = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)
    one_by_one = x
    for layer in model.layers:
        one_by_one = layer.forward(one_by_one, training=False)
    check(model.predict(x, verbose=0), one_by_one)  # inference takes the fused step too
    state = {key: value.copy() for key, value in model.state.items()}
    fused_out = model.forward(x, training=True).copy()
    model.backward_from_loss(y, fused_out)
    fused = {key: grad.copy() for key, grad in model.grads.items()}
    fused_state = {key: value.copy() for key, value in model.state.items()}
    for key, value in state.items():  # the moving statistics from the same start
        model.state[key][...] = value
    check(fused_out, layer_by_layer_step(model, x, y))
    for key, value in model.grads.items():
        check(fused[key], value, err_msg=key)
    for key, value in model.state.items():
        check(fused_state[key], value, err_msg=key)
        frozen = not model.get_layer(key.split("/")[0]).trainable
        assert frozen == np.array_equal(value, state[key]), key  # training moved them, or not


@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_steps_give_the_layer_by_layer_saliency(case):
    """model.input_gradient (saliency: an inference forward, then backward to the input, with the
    gradient flags switched on, which rebuilds the steps) through the fused steps, against the
    same model run layer by layer."""
    front, pool, _ = FUSED_CASES[case]
    model = Sequential(
        [Input(shape=(9, 9, 2)), *front(), pool(), layers.Flatten(), layers.Dense(3, "softmax")],
        seed=0,
    )
    x = np.random.default_rng(1).standard_normal((4, 9, 9, 2)).astype(np.float32)
    x[:, 1:8, 2:8] = 0  # blank, as MNIST's borders: with a positive bias, windows of equal values
    for layer in model.layers:  # whose first pixel must take the gradient, as layer by layer
        if "bias" in layer.params:
            layer.params["bias"][...] = 0.1
    fused = model.input_gradient(x, class_index=1)
    model.needs_input_grad = True
    logits = model.forward(x, training=False, trace=[])  # layer by layer; backward follows
    seed = np.zeros_like(logits)
    seed[:, 1] = 1
    one_by_one = model.backward_from(seed, fused=True)
    assert fused.shape == x.shape and np.abs(fused).max() > 0
    np.testing.assert_allclose(fused, one_by_one, rtol=1e-5, atol=1e-7)


def test_a_layers_own_get_and_set_weights_as_in_keras():
    model = seed_cnn()
    kernel, bias = model.layers[0].get_weights()  # the tutorials' way to look at the first filters
    assert kernel.shape == (3, 3, 1, 32) and bias.shape == (32,)
    kernel[...] = 0  # a copy: the model is untouched
    assert np.abs(model.layers[0].params["kernel"]).sum() > 0
    model.layers[0].set_weights([np.ones((3, 3, 1, 32)), np.zeros(32)])
    assert (model.layers[0].params["kernel"] == 1).all()
    with pytest.raises(
        ValueError, match=r"Conv2D 'conv2d': weight 'bias' has shape \(32,\), received \(3,\)"
    ):
        model.layers[0].set_weights([np.ones((3, 3, 1, 32)), np.zeros(3)])


def registered_layer_examples():
    """One example of every single-input layer in the registry, with an input that fits it."""
    image = (2, 6, 6, 3)
    return [
        (layers.Conv2D(4, 3, activation="relu"), image),
        (layers.Dense(3, activation="relu"), (2, 5)),
        (layers.MaxPooling2D(2), image),
        (layers.AveragePooling2D(2), image),
        (layers.GlobalAveragePooling2D(), image),
        (layers.GlobalMaxPooling2D(), image),
        (layers.Flatten(), image),
        (layers.Dropout(0.5, seed=0), (2, 5)),
        (layers.Activation("relu"), (2, 5)),
        (layers.BatchNormalization(), image),
        (layers.ZeroPadding2D(1), image),
        (layers.Reshape((-1,)), image),
        (layers.Rescaling(0.5, offset=1.0), image),
        (layers.Softmax(), (2, 5)),
        (layers.ReLU(max_value=0.5), (2, 5)),
        (layers.LeakyReLU(), (2, 5)),
    ]


def test_forward_never_writes_into_its_input_for_any_layer():
    """The ownership rule on engine.layers.base: forward(x) leaves x as it was (training and
    inference), for one example of every registered layer."""
    from cnnlab.engine.layers import LAYER_CLASSES

    examples = registered_layer_examples()
    covered = {type(layer).__name__ for layer, _ in examples}
    single_input = {
        name for name, cls in LAYER_CLASSES.items() if name != "InputLayer" and not cls.multi_input
    }
    assert covered == single_input  # a new layer needs an example here
    rng = np.random.default_rng(0)
    for layer, shape in examples:
        x = rng.standard_normal(shape).astype(np.float32)
        layer.build(x.shape[1:], rng)
        for training in (True, False):
            before = x.copy()
            layer.forward(x, training=training)
            np.testing.assert_array_equal(
                x, before, err_msg=f"{layer.describe()} training={training}"
            )
