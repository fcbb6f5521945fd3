"""The same network in Keras 3 itself, built from a cnnlab model config: the engine's oracle.

The torch reference (``cnnlab.reference.torch``) reproduces Keras's conventions by hand;
this module asks Keras. ``build_keras_model`` turns ``Sequential.get_config()`` into a
``keras.Sequential`` with the same layers and arguments (the engine's config keys are
Keras's own names), and ``KerasTrainer`` trains it with ``keras_model.fit`` on exactly the
engine's batches, in the engine's order. It offers ``TorchTrainer``'s interface, so
``cnnlab.compare`` can use either.

Layout. The engine keeps Keras's layouts (images NHWC, conv kernels (kh, kw, in, out), Dense
kernels (in, out), Flatten in (H, W, C) order), so weights copy both ways unchanged with
``get_weights``/``set_weights``.

Backend. Keras runs on PyTorch here: ``KERAS_BACKEND`` defaults to "torch" (a value already
set is kept). Keras is imported on first use, never when cnnlab is imported; ``keras_available``
says whether it is installed without importing it.

Known difference (Keras 3's torch backend, not the engine). ``AveragePooling2D`` with
``padding="same"`` where the padding is uneven (odd total, the extra pixel after) pads by
replicating the edge pixels and counts them in the average; TensorFlow's rule, which the
engine and the torch reference follow, divides by the real pixels only. With even padding
(and with "valid") Keras on torch agrees with TensorFlow and the engine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.engine import optimizers as engine_optimizers
from cnnlab.engine.config import floatx
from cnnlab.engine.model import check_batch_size
from cnnlab.engine.sequential import Sequential
from cnnlab.reference.common import (
    check_supported,
    engine_model_from_config,
    fit_inputs,
    supported_layers,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "KerasTrainer",
    "build_keras_model",
    "build_keras_twin",
    "import_keras",
    "keras_available",
    "keras_layer",
    "make_keras_optimizer",
    "quiet_keras",
    "supported_layers",
]

Config = dict[str, Any] | list[dict[str, Any]]
ARRAY_COPY_WARNING = "__array__ implementation doesn't accept a copy keyword"
KERAS_OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adagrad": "Adagrad",
    "nadam": "Nadam",
    "adamw": "AdamW",
}


# --------------------------------------------------------------------------- import
def keras_available() -> bool:
    """True when Keras 3 is installed (checked without importing it)."""
    return importlib.util.find_spec("keras") is not None


def import_keras() -> Any:
    """``import keras`` with the torch backend unless KERAS_BACKEND names another."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as err:
        raise ImportError(
            "the Keras reference needs Keras 3 and PyTorch: pip install keras torch"
        ) from err
    return keras


@contextlib.contextmanager
def quiet_keras() -> Iterator[None]:
    """Silence one known, harmless warning: Keras's torch backend converts outputs with
    ``np.array(tensor)``, and NumPy 2 warns that torch's ``Tensor.__array__`` takes no ``copy``
    argument. Every other warning passes through."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARRAY_COPY_WARNING, category=DeprecationWarning)
        yield


# ---------------------------------------------------------------------------- model


def keras_layer(class_name: str, config: dict[str, Any], dtype: str | None = None) -> Any:
    """keras.layers.<class_name> with the engine layer's config; keys Keras's constructor
    does not take are dropped (the engine's names are Keras's, so normally none are). Every
    class of the engine's layer registry has its twin of the same name in keras.layers."""
    keras = import_keras()
    if class_name not in supported_layers() or class_name == "InputLayer":
        raise ValueError(
            f"the Keras reference does not support layer class {class_name!r}; "
            f"supported: {', '.join(supported_layers())}"
        )
    cls = getattr(keras.layers, class_name)
    known = constructor_arguments(cls) | {"name"}
    arguments = {key: value for key, value in config.items() if key in known}
    return cls(**arguments, dtype=dtype or floatx())


def constructor_arguments(cls: type) -> set[str]:
    """The named arguments of a class's constructor."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name
        for p in parameters
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"
    }


def build_keras_twin(model: Sequential) -> keras.Sequential:
    """The keras.Sequential of a built engine model, with its weights copied."""
    keras = import_keras()
    config = model.get_config()
    check_supported(config, "Keras")
    dtype = floatx()
    specs = config["layers"]
    inputs = keras.Input(
        shape=tuple(model.input_shape), dtype=dtype, name=specs[0]["config"].get("name")
    )
    layers = [keras_layer(spec["class_name"], spec["config"], dtype) for spec in specs[1:]]
    keras_model = keras.Sequential([inputs, *layers], name=config.get("name"))
    keras_model.set_weights(engine_weight_list(model))
    return keras_model


def engine_weight_list(model: Sequential) -> list[np.ndarray]:
    """Every weight of the engine model in Keras's get_weights() order: per layer, the trainable
    ones then the non-trainable ones (BatchNormalization's moving statistics)."""
    return [value for layer in model.layers for value in layer.weights_dict().values()]


def copy_keras_weights_to_engine(keras_model: Any, model: Sequential) -> None:
    """keras_model.get_weights() into the engine model's arrays, moving statistics included."""
    targets = [
        (layer, key, value) for layer in model.layers for key, value in layer.weights_dict().items()
    ]
    with quiet_keras():
        weights = keras_model.get_weights()
    if len(weights) != len(targets):
        raise ValueError(
            f"the Keras model has {len(weights)} weight arrays, the engine model {len(targets)}"
        )
    for (layer, key, value), source in zip(targets, weights):
        if value.shape != source.shape:
            raise ValueError(
                f"{layer.describe()}: weight {key!r} has shape {value.shape}, Keras gives "
                f"{source.shape}"
            )
        value[...] = source


def build_keras_model(config: Config, seed: int | None = None) -> keras.Sequential:
    """The keras.Sequential of ``Sequential.get_config()`` (or the bare list of layers).

    InputLayer becomes ``keras.Input(shape=...)``; Conv2D, MaxPooling2D, AveragePooling2D,
    Dense, Flatten, Dropout and Activation the keras.layers class with the same arguments.
    The weights are those ``Sequential.from_config(config, seed=seed)`` initialises, so one
    seed gives the same start in both engines. Raises ValueError for other layer classes.
    """
    return build_keras_twin(engine_model_from_config(config, "Keras", seed))


def make_keras_optimizer(optimizer_config: dict[str, Any] | str) -> Any:
    """The keras.optimizers class (SGD, Adam, RMSprop, Adadelta, Adagrad, Nadam, AdamW) for
    ``optimizer.get_config()`` of the engine (or a name: "adam"), with the same arguments; the
    engine checks them and fills in Keras's defaults first. Both apply the same update formulas
    (see cnnlab.engine.optimizers). Keras 2's ``decay``, which Keras 3 ignores, becomes the
    schedule that computes it: InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)."""
    keras = import_keras()
    config = engine_optimizers.get(optimizer_config).get_config()
    name = config.pop("name")
    if name not in KERAS_OPTIMIZERS:
        raise ValueError(
            f"the Keras reference has no optimizer {name!r}; choose one of "
            f"{', '.join(KERAS_OPTIMIZERS)}"
        )
    decay = config.pop("decay", None)
    if decay:
        config["learning_rate"] = keras.optimizers.schedules.InverseTimeDecay(
            config["learning_rate"], 1, decay
        )
    return getattr(keras.optimizers, KERAS_OPTIMIZERS[name])(**config)


def keras_loss(loss: Any) -> Any:
    """The Keras 3 loss object for an engine loss, its arguments (from_logits) included."""
    from cnnlab.keras_format import keras_loss as serialized_loss

    return import_keras().losses.get(serialized_loss(loss))


# -------------------------------------------------------------------------- trainer
class KerasTrainer:
    """Trains the Keras twin of a cnnlab config with ``keras_model.fit``, in the engine's batch
    order.

    Same start: weights from ``Sequential.from_config(config, seed=seed)``, and the shuffling
    generator of that model, so one seed gives the same initial weights and batch order as
    the engine. Inputs and targets are checked and shaped by that engine model's own rules.
    Dropout masks come from Keras's generators: with a seed, ``keras.utils.set_random_seed(seed)``
    is called before the model is built (it seeds Python's, NumPy's global and torch's global
    generators, process-wide), so runs repeat. ``threads``, if given, is passed to
    ``torch.set_num_threads`` (process-wide).
    """

    def __init__(
        self,
        config: Config,
        optimizer_config: dict[str, Any] | str = "adam",
        loss_name: str = "categorical_crossentropy",
        seed: int | None = None,
        threads: int | None = None,
        accuracy: bool = True,
    ) -> None:
        keras = import_keras()
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.engine_model = engine_model_from_config(
            config, "Keras", seed
        )  # checks inputs as the engine does
        self.engine_model.compile(
            optimizer=optimizer_config, loss=loss_name, metrics=["accuracy"] if accuracy else None
        )
        self.shuffle_rng = self.engine_model.shuffle_rng
        self.metrics = self.engine_model.metrics
        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.keras_model = build_keras_twin(self.engine_model)
        self.keras_model.compile(
            optimizer=make_keras_optimizer(optimizer_config),
            loss=keras_loss(self.engine_model.loss),
            metrics=["accuracy"] if accuracy else None,
            jit_compile=False,
        )
        self.history: dict[str, list[float]] = {}
        self.epoch_seconds: list[float] = []

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int = 32,
        epochs: int = 1,
        validation_split: float = 0.0,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        shuffle: bool = True,
        shuffle_rng: np.random.Generator | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
    ) -> dict[str, list[float]]:
        """Train like ``Sequential.fit``; returns the history
        {"loss", "accuracy", "val_loss", "val_accuracy"}.

        validation_split takes the last floor-complement fraction before shuffling; each epoch
        is shuffled with ``shuffle_rng.permutation(n)`` (default: this trainer's generator) and
        handed to one ``keras_model.fit(..., epochs=1, shuffle=False)``, so Keras walks the
        batches in the engine's order. ``history`` and ``epoch_seconds`` (the time of that fit
        call: training only, validation is evaluated after it) hold the last fit's epochs.
        """
        rng = (self.shuffle_rng if shuffle_rng is None else shuffle_rng) if shuffle else None
        x, y, validation_data, batch_size, rng = fit_inputs(
            self.engine_model, x, y, batch_size, validation_split, validation_data, rng
        )
        self.history, self.epoch_seconds = {}, []
        for epoch in range(epochs):
            order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
            logs = self.train_epoch(x[order], y[order], batch_size, validation_data)
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            if on_epoch_end is not None:
                on_epoch_end(epoch, logs)
        return self.history

    def train_epoch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        validation_data: tuple[np.ndarray, np.ndarray] | None,
    ) -> dict[str, float]:
        """One ``keras_model.fit(..., epochs=1, shuffle=False)`` on the samples in the order
        given, its seconds appended to ``epoch_seconds`` (training only), then the validation
        data evaluated; returns that epoch's logs ("loss" first, "val_*" after)."""
        start = time.perf_counter()
        with quiet_keras():
            epoch_history = self.keras_model.fit(
                x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0
            )
        self.epoch_seconds.append(time.perf_counter() - start)
        logs = keras_logs(epoch_history.history)
        if validation_data is not None:
            validation = self.evaluate_logs(*validation_data, batch_size)
            logs.update({f"val_{k}": v for k, v in validation.items()})
        return logs

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> tuple[float, float]:
        """(loss, accuracy) with dropout off (keras.Model.evaluate); accuracy is NaN without the
        metric."""
        logs = self.evaluate_logs(
            *self.engine_model.standardize(x, y, "evaluate"), check_batch_size(batch_size)
        )
        return logs["loss"], logs.get("accuracy", math.nan)

    def evaluate_logs(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        with quiet_keras():
            logs = self.keras_model.evaluate(
                x, y, batch_size=batch_size, verbose=0, return_dict=True
            )
        return keras_logs(logs)

    def predict(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """x: (N, *input_shape) -> (N, *output_shape) float32 outputs
        (probabilities after softmax)."""
        x = self.engine_model.standardize_x(x, "predict")
        with quiet_keras():
            outputs = self.keras_model.predict(
                x, batch_size=check_batch_size(batch_size), verbose=0
            )
        return np.asarray(outputs).astype(np.float32, copy=False)

    def set_weights_from(self, model: Sequential) -> None:
        """Load the weights of an engine model of the same config."""
        self.keras_model.set_weights(engine_weight_list(model))

    def to_engine(self, model: Sequential | None = None) -> Sequential:
        """The trained weights in an engine model of the same config (by default the trainer's
        own compiled engine twin, ready to save or evaluate); returns that model."""
        model = self.engine_model if model is None else model
        copy_keras_weights_to_engine(self.keras_model, model)
        return model


def keras_logs(logs: dict[str, Any]) -> dict[str, float]:
    """Keras's logs (values, or one-epoch lists) as floats, "loss" first as in the engine's
    history."""
    values = {
        key: float(value[-1] if isinstance(value, list) else value) for key, value in logs.items()
    }
    return dict(sorted(values.items(), key=lambda item: item[0] != "loss"))
