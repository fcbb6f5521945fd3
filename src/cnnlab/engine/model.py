"""``Sequential``: a stack of layers trained by mini-batch gradient descent (keras.Sequential).

One training step: forward through every layer, the loss, backward through every layer
in reverse (each stores its weight gradients), then one optimizer step on all weights.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import losses as losses_module
from . import optimizers as optimizers_module
from . import saving
from .callbacks import Callback, CallbackList, History, ProgbarLogger
from .config import default_seed, floatx
from .layers import InputLayer, Layer, deserialize, unique_name

CHECKPOINT_FORMAT = "cnnlab-checkpoint"


class TrainingDiverged(ValueError):
    """The loss or a gradient became NaN or infinite; the message names where and when."""


ACCURACY_NAMES = {"accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"}


class Sequential:
    """A linear stack of layers, with Keras's methods: summary, compile, fit, evaluate,
    predict, get_config/from_config, get_weights/set_weights, save.

    ``seed`` makes initialisation, shuffling and dropout repeatable bit for bit; without it,
    the seed of ``cnnlab.utils.set_random_seed`` is used, or fresh entropy.
    """

    def __init__(self, layers: list[Layer] | None = None, name: str | None = None, seed: int | None = None) -> None:
        self.name = name or unique_name("sequential")
        self.seed = default_seed() if seed is None else seed
        init_seq, shuffle_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.init_rng, self.shuffle_rng = np.random.default_rng(init_seq), np.random.default_rng(shuffle_seq)
        self.input_layer: InputLayer | None = None
        self._layers: list[Layer] = []
        self.loss: losses_module.Loss | None = None
        self.optimizer: optimizers_module.Optimizer | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        """The layers, without the input layer (as Keras)."""
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self.input_layer is not None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input_layer.shape if self.input_layer else None

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._layers[-1].output_shape if self._layers else self.input_shape

    def add(self, layer: Layer) -> None:
        """Append a layer; with a known input shape it is built (and checked) at once."""
        if isinstance(layer, InputLayer):
            if self.input_layer is not None or self._layers:
                raise ValueError(f"{self.name}: an Input can only be the first element of a Sequential model")
            self.input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: expected a layer, received {layer!r}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"{self.name}: all layer names must be unique; {layer.name!r} appears twice")
        if not self._layers and self.input_layer is None and layer.declared_input_shape:
            self.input_layer = InputLayer(shape=layer.declared_input_shape)
        self._layers.append(layer)
        if self.input_layer is not None:
            self.build(self.input_layer.shape)

    def build(self, input_shape: tuple[int, ...]) -> None:
        """Build every layer not yet built, in order; a misfit raises ValueError at once."""
        if self.input_layer is None:
            self.input_layer = InputLayer(shape=tuple(input_shape))
        shape = self.input_layer.shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape, self.init_rng)
            shape = layer.output_shape
        trainable = [i for i, layer in enumerate(self._layers) if layer.params]
        self.first_trainable = trainable[0] if trainable else len(self._layers)
        for i, layer in enumerate(self._layers):
            layer.needs_input_grad = i > self.first_trainable

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._layers)

    def summary_rows(self) -> list[tuple[str, str, str, int]]:
        """(name, class, output shape, parameter count) per layer, as summary() shows them."""
        return [(layer.name, type(layer).__name__, str((None, *layer.output_shape)) if layer.built else "?",
                 layer.count_params()) for layer in self._layers]

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print Keras 3's summary table: layer (type), output shape, params, totals."""
        rows = [(f"{name} ({kind})", shape, f"{count:,}") for name, kind, shape, count in self.summary_rows()]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(SUMMARY_HEADER)]
        print_fn(f'Model: "{self.name}"')
        for line in summary_table(SUMMARY_HEADER, rows, widths):
            print_fn(line)
        total = self.count_params()
        size = total * np.dtype(floatx()).itemsize
        print_fn(f" Total params: {total:,} ({format_bytes(size)})")
        print_fn(f" Trainable params: {total:,} ({format_bytes(size)})")
        print_fn(" Non-trainable params: 0 (0.00 B)")

    # --------------------------------------------------------------- compile/fit
    def compile(self, optimizer: str | optimizers_module.Optimizer = "rmsprop", loss: str | losses_module.Loss | None = None,
                metrics: list[str] | None = None) -> None:
        """Choose the optimizer, loss and metrics (only "accuracy" and its variants)."""
        if loss is None:
            raise ValueError(f"{self.name}: compile() needs a loss, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        unknown = [m for m in metrics or [] if m not in ACCURACY_NAMES]
        if unknown:
            raise ValueError(f"{self.name}: unknown metrics {unknown}; supported: {sorted(ACCURACY_NAMES)}")
        self.metrics = ["accuracy"] if metrics else []

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None, epochs: int = 1, verbose: int | str = "auto",
            callbacks: list[Callback] | None = None, validation_split: float = 0.0,
            validation_data: tuple[np.ndarray, np.ndarray] | None = None, shuffle: bool = True,
            initial_epoch: int = 0) -> History:
        """Train for ``epochs`` passes over (x, y); returns a History (keras.Model.fit).

        validation_split takes the *last* fraction of the data, before any shuffling.
        """
        self.require_compiled("fit")
        x, y = self.standardize(x, y, "fit")
        batch_size = check_batch_size(batch_size or 32)
        if validation_data is None and validation_split:
            x, y, validation_data = split_validation(x, y, validation_split)
        elif validation_data is not None:
            validation_data = self.standardize(*validation_data, "fit validation_data")
        steps = math.ceil(len(x) / batch_size)
        self.history = history = History()
        progress = [ProgbarLogger(steps, epochs)] if verbose not in (0, False) else []
        hooks = CallbackList([history, *progress, *(callbacks or [])], self)
        self.stop_training, self.resume_epoch = False, 0
        hooks.on_train_begin()  # BackupAndRestore may restore a checkpoint and set resume_epoch
        for epoch in range(max(initial_epoch, self.resume_epoch), epochs):
            self.epoch = epoch
            hooks.on_epoch_begin(epoch)
            logs = self.train_epoch(x, y, batch_size, shuffle, hooks)
            if validation_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate_logs(*validation_data, batch_size).items()})
            hooks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        hooks.on_train_end()
        return history

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, hooks: Callback) -> dict[str, float]:
        """One pass over the data in mini-batches; the logs are sample-weighted means."""
        order = self.shuffle_rng.permutation(len(x)) if shuffle else np.arange(len(x))
        totals = Totals()
        start = time.perf_counter()
        for step, begin in enumerate(range(0, len(x), batch_size)):
            batch = order[begin : begin + batch_size]
            self.step = step
            with np.errstate(over="ignore", invalid="ignore"):  # the divergence guard reports these
                totals.add(*self.train_step(x[batch], y[batch]), len(batch))
            hooks.on_train_batch_end(step, totals.logs(self.metrics))
        self.last_epoch_seconds = time.perf_counter() - start
        return totals.logs(self.metrics)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Forward, loss, backward, optimizer step on one batch; returns (loss, correct count)."""
        y_pred = self.forward(x, training=True)
        loss = self.loss(y, y_pred)
        self.backward(y, y_pred)
        self.check_finite(loss, "grads")
        self.optimizer.apply(self.trainable_updates())
        self.check_finite(loss, "params")
        return loss, correct_count(y, y_pred) if self.metrics else 0.0

    def check_finite(self, loss: float, arrays: str) -> None:
        """The divergence guard: NaN or infinity in the loss, the gradients (checked before the
        update, so a bad gradient never reaches the weights) or the weights (after it)."""
        broken = next((layer for layer in self._layers if any(not np.isfinite(a).all() for a in getattr(layer, arrays).values())), None)
        if math.isfinite(loss) and broken is None:
            return
        where = f"first in the {'gradient' if arrays == 'grads' else 'weights'} of layer '{broken.name}'" if broken else "in the loss"
        raise TrainingDiverged(
            f"training diverged at epoch {getattr(self, 'epoch', 0) + 1}, batch {getattr(self, 'step', 0) + 1}: "
            f"the loss is {loss:.4g} and NaN or infinity appeared {where}. "
            f"Lower the learning rate (now {self.optimizer.learning_rate:g}).")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (N, *input_shape) -> (N, *output_shape)."""
        for layer in self._layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray | None:
        """Fill every layer's grads; uses the fused softmax/sigmoid + cross-entropy gradient."""
        layers = self._layers[self.first_trainable :]
        if not layers:
            return None  # nothing to train
        if self.uses_fused_gradient():
            grad = layers[-1].backward_linear(self.loss.gradient_before_activation(y_true, y_pred))
            layers = layers[:-1]
        else:
            grad = self.loss.gradient(y_true, y_pred)
        for layer in reversed(layers):
            grad = layer.backward(grad)
        return grad

    def uses_fused_gradient(self) -> bool:
        """True when the last layer's activation is the one the loss fuses with."""
        activation = getattr(self._layers[-1], "activation", None)
        return self.loss.fused_activation is not None and activation is not None and activation.name == self.loss.fused_activation

    def trainable_updates(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(key "layer/param", parameter, gradient) for every weight."""
        return [(f"{layer.name}/{key}", param, layer.grads[key]) for layer in self._layers for key, param in layer.params.items()]

    # ------------------------------------------------------- evaluate / predict
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None, verbose: int | str = "auto",
                 return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """[loss, accuracy] on (x, y) (keras.Model.evaluate); loss alone without metrics."""
        self.require_compiled("evaluate")
        x, y = self.standardize(x, y, "evaluate")
        logs = self.evaluate_logs(x, y, check_batch_size(batch_size or 32))
        if return_dict:
            return logs
        return [logs["loss"], logs["accuracy"]] if self.metrics else logs["loss"]

    def evaluate_logs(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        totals = Totals()
        for begin in range(0, len(x), batch_size):
            y_pred = self.forward(x[begin : begin + batch_size])
            yb = y[begin : begin + batch_size]
            totals.add(self.loss(yb, y_pred), correct_count(yb, y_pred) if self.metrics else 0.0, len(yb))
        return totals.logs(self.metrics)

    def predict(self, x: np.ndarray, batch_size: int | None = None, verbose: int | str = "auto") -> np.ndarray:
        """The model's outputs for x, in batches (keras.Model.predict)."""
        x = self.standardize_x(x, "predict")
        batch_size = check_batch_size(batch_size or 32)
        return np.concatenate([self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    # ----------------------------------------------------------- inside the network
    def feature_maps(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(layer name, output) of every layer for inputs x, at inference."""
        out, maps = self.standardize_x(x, "feature_maps"), []
        for layer in self._layers:
            out = layer.forward(out, training=False)
            maps.append((layer.name, out.copy()))
        return maps

    def input_gradient(self, x: np.ndarray, class_index: int | np.ndarray | None = None) -> np.ndarray:
        """d(score of a class)/d(input), the saliency map: (N, *input_shape).

        The score is the last layer's value before its activation (the logit); the class is
        the predicted one unless class_index is given. Computed by the engine's own backward.
        """
        y = self.forward(self.standardize_x(x, "input_gradient"), training=False)
        classes = y.argmax(axis=-1) if class_index is None else np.broadcast_to(class_index, (len(y),))
        seed_grad = np.zeros_like(y)
        seed_grad[np.arange(len(y)), classes] = 1
        saved = [layer.needs_input_grad for layer in self._layers]
        try:
            for layer in self._layers:
                layer.needs_input_grad = True
            last = self._layers[-1]
            grad = last.backward_linear(seed_grad) if hasattr(last, "backward_linear") else last.backward(seed_grad)
            for layer in reversed(self._layers[:-1]):
                grad = layer.backward(grad)
        finally:
            for layer, needed in zip(self._layers, saved):
                layer.needs_input_grad = needed
        return grad.copy()  # the backward pass reuses its scratch memory next time

    # ---------------------------------------------------------------- checking
    def require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise ValueError(f"{self.name}: call compile(optimizer=..., loss=...) before {method}()")

    def standardize_x(self, x: np.ndarray, method: str) -> np.ndarray:
        """x as an array of floatx; builds the model from x's shape if it has no Input."""
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        if x.ndim < 1 or tuple(x.shape[1:]) != self.input_shape:
            hint = " (add the channel axis: x[..., None])" if tuple(x.shape[1:]) + (1,) == self.input_shape else ""
            raise ValueError(f"{self.name}.{method}: expected input of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"received {x.shape}{hint}")
        return x.astype(floatx(), copy=False)

    def standardize(self, x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
        """x and y as arrays with matching counts; NaN or infinity refused before training."""
        x, y = self.standardize_x(x, method), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{self.name}.{method}: x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{self.name}.{method}: no samples")
        for name, array in (("x", x), ("y", y)):
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(f"{self.name}.{method}: {name} contains NaN or infinity")
        if not isinstance(self.loss, losses_module.SparseCategoricalCrossentropy):
            y = self.match_output_shape(y.astype(floatx(), copy=False), method)
        return x, y

    def match_output_shape(self, y: np.ndarray, method: str) -> np.ndarray:
        """Targets shaped like the output; (N,) is accepted for a one-unit output, as Keras does."""
        if tuple(y.shape[1:]) == tuple(self.output_shape):
            return y
        if y.size == len(y) * math.prod(self.output_shape):
            return y.reshape(len(y), *self.output_shape)
        raise ValueError(f"{self.name}.{method}: y has shape {y.shape} but the model's output is (N, "
                         f"{', '.join(map(str, self.output_shape))}); one-hot encode labels with to_categorical "
                         "or use loss='sparse_categorical_crossentropy'")

    # ------------------------------------------------------------ weights, config
    def get_weights(self) -> list[np.ndarray]:
        """Every weight array in layer order (kernel, bias, ...), as Keras."""
        return [param.copy() for layer in self._layers for param in layer.params.values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load arrays in get_weights() order; shapes must match."""
        targets = [(layer, key) for layer in self._layers for key in layer.params]
        if len(weights) != len(targets):
            raise ValueError(f"{self.name}: expected {len(targets)} weight arrays, received {len(weights)}")
        for (layer, key), value in zip(targets, weights):
            value = np.asarray(value)
            if value.shape != layer.params[key].shape:
                raise ValueError(f"{layer.describe()}: weight {key!r} has shape {layer.params[key].shape}, received {value.shape}")
            layer.params[key][...] = value

    def weights_by_key(self) -> dict[str, np.ndarray]:
        """{"layer/param": array}, the form saved to files."""
        return {f"{layer.name}/{key}": param for layer in self._layers for key, param in layer.params.items()}

    def get_config(self) -> dict[str, Any]:
        """{"name": ..., "layers": [{"class_name": ..., "config": {...}}, ...]} (JSON-able)."""
        specs = [{"class_name": "InputLayer", "config": self.input_layer.get_config()}] if self.input_layer else []
        specs += [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self._layers]
        return {"name": self.name, "layers": specs}

    @classmethod
    def from_config(cls, config: dict[str, Any] | list[dict[str, Any]], seed: int | None = None) -> Sequential:
        """The model ``get_config`` describes (a dict with "layers", or the bare list)."""
        specs = config if isinstance(config, list) else config.get("layers")
        if not isinstance(specs, list):
            raise ValueError("a model config needs a list of layers: {'layers': [{'class_name': ..., 'config': ...}]}")
        name = None if isinstance(config, list) else config.get("name")
        return cls([deserialize(spec) for spec in specs], name=name, seed=seed)

    def compile_config(self) -> dict[str, Any] | None:
        if self.loss is None:
            return None
        return {"optimizer": self.optimizer.get_config(), "loss": self.loss.name, "metrics": list(self.metrics)}

    def rngs(self) -> dict[str, np.random.Generator]:
        """Every random generator that training draws from: shuffling and each dropout layer."""
        return {"shuffle": self.shuffle_rng, **{f"layer/{l.name}": l.rng for l in self._layers if hasattr(l, "rng")}}

    def save_checkpoint(self, path: str | Path, epoch: int, history: History) -> None:
        """Everything needed to continue training exactly: weights, optimizer state, random
        states, history so far and the number of finished epochs. Written atomically."""
        meta = {"model_config": self.get_config(), "compile_config": self.compile_config(), "epoch": epoch,
                "history": history.history, "epoch_seconds": history.epoch_seconds,
                "rng_states": {name: rng.bit_generator.state for name, rng in self.rngs().items()}}
        arrays = {f"weights/{k}": v for k, v in self.weights_by_key().items()}
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.get_state().items()})
        saving.write_archive(path, meta, arrays, kind=CHECKPOINT_FORMAT)

    def load_checkpoint(self, path: str | Path) -> tuple[int, dict[str, list[float]], list[float]]:
        """Restore a checkpoint of this model; returns (finished epochs, history, epoch seconds)."""
        meta, arrays = saving.read_archive(path, kind=CHECKPOINT_FORMAT)
        weights = {k.removeprefix("weights/"): v for k, v in arrays.items() if k.startswith("weights/")}
        if sorted(weights) != sorted(self.weights_by_key()) or meta["model_config"]["layers"] != self.get_config()["layers"]:
            raise ValueError(f"{path}: the checkpoint belongs to a different model")
        for key, target in self.weights_by_key().items():
            target[...] = weights[key]
        self.optimizer.set_state({k.removeprefix("optimizer/"): v for k, v in arrays.items() if k.startswith("optimizer/")})
        for name, rng in self.rngs().items():
            rng.bit_generator.state = meta["rng_states"][name]
        return meta["epoch"], meta["history"], meta["epoch_seconds"]

    def save(self, path: str | Path) -> None:
        """Write config, compile settings and weights into one file (no pickle), atomically."""
        meta = {"model_config": self.get_config(), "compile_config": self.compile_config()}
        saving.write_archive(path, meta, self.weights_by_key())


def load_model(path: str | Path, compile: bool = True) -> Sequential:
    """A model saved by ``Sequential.save`` (keras.models.load_model); verifies the checksum."""
    meta, arrays = saving.read_archive(path)
    try:
        model = Sequential.from_config(meta["model_config"])
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: the model config in the file is incomplete or damaged ({err!r})") from None
    expected = model.weights_by_key()
    if sorted(expected) != sorted(arrays):
        raise ValueError(f"{path}: the weights in the file do not match its model config")
    for key, value in arrays.items():
        if value.shape != expected[key].shape:
            raise ValueError(f"{path}: weight {key!r} has shape {value.shape}, the config needs {expected[key].shape}")
        expected[key][...] = value
    settings = meta.get("compile_config")
    if compile and settings:
        model.compile(optimizer=optimizers_module.get(settings["optimizer"]), loss=settings["loss"], metrics=settings["metrics"])
    return model


# ----------------------------------------------------------------------- helpers
SUMMARY_HEADER = ("Layer (type)", "Output Shape", "Param #")


def summary_table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: list[int]) -> list[str]:
    """Keras 3's box-drawn table, the last column right-aligned."""
    def row(cells: tuple[str, ...], bar: str) -> str:
        texts = [f" {c:<{w - 2}} " if i < len(cells) - 1 else f" {c:>{w - 2}} " for i, (c, w) in enumerate(zip(cells, widths))]
        return bar + bar.join(texts) + bar

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    lines = [rule("┏", "┳", "┓", "━"), row(header, "┃"), rule("┡", "╇", "┩", "━")]
    for i, cells in enumerate(rows):
        lines.append(row(cells, "│"))
        lines.append(rule("├", "┼", "┤", "─") if i < len(rows) - 1 else rule("└", "┴", "┘", "─"))
    if not rows:
        lines.append(rule("└", "┴", "┘", "─"))
    return lines


def format_bytes(size: float) -> str:
    """136.04 KB, as Keras's summary prints sizes."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, received {batch_size!r}")
    return int(batch_size)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Keras's rule: the last floor-complement fraction is validation, in the given order."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be between 0 and 1, received {fraction!r}")
    split_at = int(math.floor(len(x) * (1.0 - fraction)))
    if split_at in (0, len(x)):
        raise ValueError(f"{len(x)} samples are too few to split with validation_split={fraction}")
    return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])


def correct_count(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """How many predictions are right: argmax for several outputs, > 0.5 for one (Keras's rule)."""
    if y_pred.ndim == 2 and y_pred.shape[1] == 1 or y_pred.ndim == 1:
        return float(((y_pred.reshape(len(y_pred), -1) > 0.5) == (y_true.reshape(len(y_pred), -1) > 0.5)).mean(axis=1).sum())
    predicted = y_pred.argmax(axis=-1)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == y_pred.shape[-1]:
        return float((predicted == y_true.argmax(axis=-1)).sum())
    return float((predicted == y_true.reshape(predicted.shape)).sum())


class Totals:
    """Running sample-weighted sums of the loss and of correct predictions."""

    def __init__(self) -> None:
        self.loss = self.correct = 0.0
        self.count = 0

    def add(self, loss: float, correct: float, count: int) -> None:
        self.loss += loss * count
        self.correct += correct
        self.count += count

    def logs(self, metrics: list[str]) -> dict[str, float]:
        logs = {"loss": self.loss / max(self.count, 1)}
        if metrics:
            logs["accuracy"] = self.correct / max(self.count, 1)
        return logs
