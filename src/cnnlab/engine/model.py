"""Models: ``Model``, the training machinery that ``Sequential`` (sequential.py) and functional
models (graph.py) share.

One training step: forward through the layers, the loss, backward through the layers in
reverse (each stores its weight gradients), then one optimizer step on every trainable
weight. ``Sequential`` orders its layers in a line; a functional model (``graph.Functional``,
made by ``Model(inputs, outputs)`` as in Keras) orders them as a directed acyclic graph.
A model is itself a layer, so a model can be used inside another.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import limits, saving
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .callbacks import Callback, CallbackList, History, TerminateOnNaN
from .config import default_seed, floatx
from .errors import UnsupportedKerasFeature
from .layers import Layer, deserialize, unique_name
from .summary import print_summary
from .threads import ThreadFitter

CHECKPOINT_FORMAT = "cnnlab-checkpoint"
Data = np.ndarray | list[np.ndarray]  # one array per model input


class TrainingDiverged(ValueError):
    """The loss or a gradient became NaN or infinite; the message names where and when."""


class Model(Layer):
    """What every model has, with Keras's methods: compile, fit, evaluate, predict, summary,
    get_weights/set_weights, save. ``Model(inputs, outputs)`` makes a functional model.

    ``seed`` makes initialisation, shuffling and dropout repeatable bit for bit; without it,
    the seed of ``cnnlab.utils.set_random_seed`` is used, or fresh entropy.
    Subclasses provide ``layers``, ``forward(x, training, trace)``, ``backward_from(grad, fused)``,
    ``output_layer``, ``build`` and ``get_config``.
    """

    default_name = "model"

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model:
            from .graph import Functional  # Keras: Model(inputs, outputs) is a Functional

            return super().__new__(Functional)
        if "call" in cls.__dict__:
            raise UnsupportedKerasFeature(
                f"{cls.__name__}: subclassed models (a Model subclass with its own call()) are "
                "not supported by "
                "cnnlab, which needs the layer graph to run backward; build the model with "
                "Sequential or the "
                "functional API, keras.Model(inputs, outputs)"
            )
        return super().__new__(cls)

    def __init__(
        self, name: str | None = None, seed: int | None = None, trainable: bool = True
    ) -> None:
        self.name = name or unique_name(self.default_name)
        self.seed = default_seed() if seed is None else seed
        init_seq, shuffle_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.init_rng, self.shuffle_rng = (
            np.random.default_rng(init_seq),
            np.random.default_rng(shuffle_seq),
        )
        self.trainable = bool(trainable)
        self._needs_input_grad = (
            False  # True when used inside another model that trains layers before it
        )
        self.declared_input_shape = None
        self.loss: losses_module.Loss | None = None
        self.optimizer: optimizers_module.Optimizer | None = None
        self.metrics: list[metrics_module.Metric] = []
        self.stop_training = False
        self.divergence_guard = (
            True  # check_finite after every step (off while a TerminateOnNaN watches)
        )
        self.thread_fitter = ThreadFitter()  # idle until fit starts it
        self.history: History | None = None

    # ------------------------------------------------------------ a model as a layer
    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, needed: bool) -> None:
        self._needs_input_grad = bool(needed)
        if self.built:
            self.update_gradient_flags()

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every layer's trainable-kind weights, keyed "layer/param"
        (nested: "model/layer/param")."""
        return {
            f"{layer.name}/{key}": value
            for layer in self.layers
            for key, value in layer.params.items()
        }

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {
            f"{layer.name}/{key}": value
            for layer in self.layers
            for key, value in layer.grads.items()
        }

    @property
    def state(self) -> dict[str, np.ndarray]:
        return {
            f"{layer.name}/{key}": value
            for layer in self.layers
            for key, value in layer.state.items()
        }

    def weights_dict(self) -> dict[str, np.ndarray]:
        """Every weight keyed "layer/param", in Keras's order (layer by layer), the form of saved
        files."""
        return {
            f"{layer.name}/{key}": value
            for layer in self.layers
            for key, value in layer.weights_dict().items()
        }

    weights_by_key = weights_dict

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def count_trainable_params(self) -> int:
        return sum(layer.count_trainable_params() for layer in self.layers) if self.trainable else 0

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy: the gradient of this model's output -> the gradient of its input (as a layer)."""
        return self.backward_from(dy, fused=False)

    def has_trainable_weights(self, layer: Layer) -> bool:
        return layer.trainable and layer.count_trainable_params() > 0

    def trainable_updates(self, prefix: str = "") -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(key "layer/param", parameter, gradient) for every weight the optimizer updates."""
        updates = []
        for layer in self.layers:
            if not layer.trainable:
                continue
            if isinstance(layer, Model):
                updates += layer.trainable_updates(f"{prefix}{layer.name}/")
            else:
                updates += [
                    (f"{prefix}{layer.name}/{key}", param, layer.grads[key])
                    for key, param in layer.params.items()
                ]
        return updates

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        """On symbolic tensors: this model as one node of a functional model. On arrays: the
        outputs at once (``model(x[:1]).numpy()``), in inference mode unless training=True."""
        from .graph import call_model

        return call_model(self, inputs, training)

    # --------------------------------------------------------------------- summary
    def summary(self, print_fn: Callable[[str], Any] = print, **kwargs: Any) -> None:
        """Print Keras 3's summary table: layer (type), output shape, params, totals."""
        print_summary(self, print_fn)

    # ---------------------------------------------------------------- compile / fit
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Choose the optimizer, loss and metrics (keras.Model.compile); run_eagerly and
        jit_compile are accepted and change nothing here (the engine is always eager)."""
        if loss is None:
            raise ValueError(
                f"{self.name}: compile() needs a loss, e.g. loss='categorical_crossentropy'"
            )
        for argument, value, default in (
            ("loss_weights", loss_weights, None),
            ("weighted_metrics", weighted_metrics, None),
            ("steps_per_execution", steps_per_execution, 1),
        ):
            if value != default:
                raise UnsupportedKerasFeature(
                    f"{self.name}.compile: {argument}={value!r} is not supported by cnnlab"
                )
        if (
            isinstance(loss, (list, tuple))
            or isinstance(loss, dict)
            and "name" not in loss
            or isinstance(metrics, dict)
        ):
            raise UnsupportedKerasFeature(
                f"{self.name}.compile: one loss per output (a list or dict of losses) is not "
                "supported by cnnlab: models have one output"
            )
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
        self.metrics = [metrics_module.get(metric, self.loss) for metric in metrics]

    def fit(
        self,
        x: Data | None = None,
        y: np.ndarray | None = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Data, np.ndarray] | None = None,
        shuffle: bool = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        """Train for ``epochs`` passes over (x, y); returns a History (keras.Model.fit).

        validation_split takes the *last* fraction of the data, before any shuffling.
        """
        self.require_compiled("fit")
        refuse_unsupported(
            "fit",
            class_weight=class_weight,
            sample_weight=sample_weight,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
        )
        x, y = self.standardize(x, y, "fit")
        batch_size = check_batch_size(batch_size or 32)
        if validation_data is None and validation_split:
            x, y, validation_data = split_validation(x, y, validation_split)
        elif validation_data is not None:
            validation_data = self.standardize(*validation_data[:2], "fit validation_data")
        steps = math.ceil(sample_count(x) / batch_size)
        hooks = CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose not in (0, False),
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )
        self.history = hooks.history
        self.stop_training, self.resume_epoch = False, 0
        # a TerminateOnNaN in the list takes over from the guard: Keras stops after the batch
        # instead
        self.divergence_guard = not any(isinstance(c, TerminateOnNaN) for c in hooks.callbacks)
        hooks.on_train_begin()  # BackupAndRestore may restore a checkpoint and set resume_epoch
        with self.fitted_threads():  # BLAS threads: the cores other work leaves free
            logs = self.epochs_loop(
                x,
                y,
                batch_size,
                epochs,
                max(initial_epoch, self.resume_epoch),
                shuffle,
                validation_data,
                validation_batch_size,
                validation_freq,
                hooks,
            )
        hooks.on_train_end(logs)
        return self.history

    @contextlib.contextmanager
    def fitted_threads(self) -> Iterator[None]:
        """While the block runs, the BLAS thread count follows the free cores (engine.threads).
        Nested blocks (a callback that predicts during fit) put back the fitter around them."""
        fitter, outer = ThreadFitter(), self.thread_fitter
        self.thread_fitter = fitter
        fitter.start()
        try:
            yield
        finally:
            fitter.stop()
            self.thread_fitter = outer

    def epochs_loop(
        self,
        x: Data,
        y: np.ndarray,
        batch_size: int,
        epochs: int,
        first: int,
        shuffle: bool,
        validation_data: tuple[Data, np.ndarray] | None,
        validation_batch_size: int | None,
        validation_freq: int,
        hooks: Callback,
    ) -> dict[str, float]:
        """Epochs first..epochs-1, each with its validation; stops early when a callback asks."""
        logs: dict[str, float] = {}
        for epoch in range(first, epochs):
            self.epoch = epoch
            hooks.on_epoch_begin(epoch)
            logs = self.train_epoch(x, y, batch_size, shuffle, hooks)
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self.test_loop(
                    *validation_data, validation_batch_size or batch_size, hooks
                )
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            hooks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return logs

    def train_epoch(
        self, x: Data, y: np.ndarray, batch_size: int, shuffle: bool, hooks: Callback
    ) -> dict[str, float]:
        """One pass over the data in mini-batches; the logs are sample-weighted means."""
        order = (
            self.shuffle_rng.permutation(sample_count(x)) if shuffle else np.arange(sample_count(x))
        )
        totals = Totals(self.metrics)
        start = time.perf_counter()
        for step, begin in enumerate(range(0, len(order), batch_size)):
            batch = order[begin : begin + batch_size]
            self.step = step
            hooks.on_train_batch_begin(step)
            with np.errstate(over="ignore", invalid="ignore"):  # the divergence guard reports these
                y_batch = y[batch]
                totals.add(
                    self.train_step(take(x, batch), y_batch), y_batch, self.last_output, len(batch)
                )
            hooks.on_train_batch_end(step, totals.logs())
            self.thread_fitter.tick()
            if self.stop_training:
                break
        self.last_epoch_seconds = time.perf_counter() - start
        return totals.logs()

    def train_step(self, x: Data, y: np.ndarray) -> float:
        """Forward, loss, backward, optimizer step on one batch; returns the loss."""
        y_pred = self.forward(x, training=True)
        loss = self.loss(y, y_pred)
        self.backward_from_loss(y, y_pred)
        if self.divergence_guard:
            self.check_finite(loss, "grads")
        self.optimizer.apply(self.trainable_updates())
        if self.divergence_guard:
            self.check_finite(loss, "weights")
        self.last_output = y_pred
        return loss

    def backward_from_loss(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray | None:
        """Fill every layer's grads; uses the fused softmax/sigmoid + cross-entropy gradient."""
        if self.uses_fused_gradient():
            return self.backward_from(
                self.loss.gradient_before_activation(y_true, y_pred), fused=True
            )
        return self.backward_from(self.loss.gradient(y_true, y_pred), fused=False)

    def uses_fused_gradient(self) -> bool:
        """True when the output layer's activation is the one the loss fuses with."""
        activation = getattr(self.output_layer, "activation", None)
        fused = getattr(self.loss, "fused_activation", None)
        return fused is not None and activation is not None and activation.name == fused

    def check_finite(self, loss: float, arrays: str) -> None:
        """The divergence guard: NaN or infinity in the loss, the gradients (checked before the
        update, so a bad gradient never reaches the weights) or the weights (after it)."""
        values = self.grads if arrays == "grads" else self.weights_dict()
        broken = next((key for key, value in values.items() if not np.isfinite(value).all()), None)
        if math.isfinite(loss) and broken is None:
            return
        layer = broken.rsplit("/", 1)[0] if broken else None
        where = (
            f"first in the {'gradient' if arrays == 'grads' else 'weights'} of layer '{layer}'"
            if broken
            else "in the loss"
        )
        raise TrainingDiverged(
            f"training diverged at epoch {getattr(self, 'epoch', 0) + 1}, batch "
            f"{getattr(self, 'step', 0) + 1}: "
            f"the loss is {loss:.4g} and NaN or infinity appeared {where}. "
            f"Lower the learning rate (now {self.optimizer.learning_rate:g})."
        )

    def train_on_batch(self, x: Data, y: np.ndarray) -> float | list[float]:
        """One optimizer step on (x, y); the loss, and the metrics if any
        (keras.Model.train_on_batch)."""
        self.require_compiled("train_on_batch")
        x, y = self.standardize(x, y, "train_on_batch")
        totals = Totals(self.metrics)
        totals.add(self.train_step(x, y), y, self.last_output, len(y))
        return totals.values()

    # ------------------------------------------------------------ evaluate / predict
    def evaluate(
        self,
        x: Data | None = None,
        y: np.ndarray | None = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: list[Callback] | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """The loss and the metrics on (x, y) (keras.Model.evaluate): [loss, *metrics], the loss
        alone without metrics, or a dict with return_dict=True."""
        self.require_compiled("evaluate")
        refuse_unsupported("evaluate", sample_weight=sample_weight, steps=steps)
        x, y = self.standardize(x, y, "evaluate")
        batch_size = check_batch_size(batch_size or 32)
        hooks = CallbackList(
            callbacks,
            add_progbar=verbose not in (0, False),
            model=self,
            verbose=verbose,
            epochs=1,
            steps=math.ceil(len(y) / batch_size),
        )
        with self.fitted_threads():
            logs = self.test_loop(x, y, batch_size, hooks)
        if return_dict:
            return logs
        values = list(logs.values())
        return values if len(values) > 1 else values[0]

    def test_loop(
        self, x: Data, y: np.ndarray, batch_size: int, hooks: Callback
    ) -> dict[str, float]:
        """The loss and metrics over (x, y) in batches, at inference; calls the on_test_* hooks."""
        totals = Totals(self.metrics)
        hooks.on_test_begin()
        for step, begin in enumerate(range(0, len(y), batch_size)):
            hooks.on_test_batch_begin(step)
            y_pred = self.forward(take(x, slice(begin, begin + batch_size)))
            y_batch = y[begin : begin + batch_size]
            totals.add(self.loss(y_batch, y_pred), y_batch, y_pred, len(y_batch))
            hooks.on_test_batch_end(step, totals.logs())
            self.thread_fitter.tick()
        logs = totals.logs()
        hooks.on_test_end(logs)
        return logs

    def evaluate_logs(self, x: Data, y: np.ndarray, batch_size: int) -> dict[str, float]:
        """The loss and metrics over (x, y), without callbacks."""
        return self.test_loop(x, y, batch_size, CallbackList(None, model=self))

    def test_on_batch(self, x: Data, y: np.ndarray) -> float | list[float]:
        """The loss and metrics of one batch (keras.Model.test_on_batch)."""
        self.require_compiled("test_on_batch")
        x, y = self.standardize(x, y, "test_on_batch")
        totals = Totals(self.metrics)
        y_pred = self.forward(x)
        totals.add(self.loss(y, y_pred), y, y_pred, len(y))
        return totals.values()

    def predict(
        self,
        x: Data,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: list[Callback] | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """The model's outputs for x, in batches (keras.Model.predict)."""
        refuse_unsupported("predict", steps=steps)
        x = self.standardize_x(x, "predict")
        batch_size = check_batch_size(batch_size or 32)
        count = sample_count(x)
        hooks = CallbackList(
            callbacks,
            add_progbar=verbose not in (0, False),
            model=self,
            verbose=verbose,
            epochs=1,
            steps=math.ceil(count / batch_size),
        )
        hooks.on_predict_begin()
        outputs = []
        with self.fitted_threads():
            for step, begin in enumerate(range(0, count, batch_size)):
                hooks.on_predict_batch_begin(step)
                outputs.append(
                    copy_outputs(self.forward(take(x, slice(begin, begin + batch_size))))
                )
                hooks.on_predict_batch_end(step, {"outputs": outputs[-1]})
                self.thread_fitter.tick()
        hooks.on_predict_end()
        if outputs and isinstance(outputs[0], list):
            return [np.concatenate(parts) for parts in zip(*outputs)]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self.output_shape), floatx())

    def predict_on_batch(self, x: Data) -> np.ndarray | list[np.ndarray]:
        return copy_outputs(self.forward(self.standardize_x(x, "predict_on_batch")))

    # ----------------------------------------------------------- inside the network
    def feature_maps(self, x: Data) -> list[tuple[str, np.ndarray]]:
        """(layer name, output) of every layer for inputs x, at inference."""
        trace: list[tuple[str, np.ndarray]] = []
        self.forward(self.standardize_x(x, "feature_maps"), training=False, trace=trace)
        return [(name, out.copy()) for name, out in trace]

    def input_gradient(self, x: Data, class_index: int | np.ndarray | None = None) -> np.ndarray:
        """d(score of a class)/d(input), the saliency map: (N, *input_shape).

        The score is the output layer's value before its activation (the logit); the class is
        the predicted one unless class_index is given. Computed by the engine's own backward.
        """
        y = self.forward(self.standardize_x(x, "input_gradient"), training=False)
        classes = (
            y.argmax(axis=-1) if class_index is None else np.broadcast_to(class_index, (len(y),))
        )
        seed_grad = np.zeros_like(y)
        seed_grad[np.arange(len(y)), classes] = 1
        saved = self.needs_input_grad
        try:
            self.needs_input_grad = True
            fused = hasattr(self.output_layer, "backward_linear")
            grad = self.backward_from(seed_grad, fused=fused)
        finally:
            self.needs_input_grad = saved
        return grad.copy()  # the backward pass reuses its scratch memory next time

    # ------------------------------------------------------------------- checking
    @property
    def n_inputs(self) -> int:
        return 1

    def require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise ValueError(
                f"{self.name}: call compile(optimizer=..., loss=...) before {method}()"
            )

    def standardize_x(self, x: Data, method: str) -> Data:
        """x as an array of floatx (a list of them for several inputs); builds the model
        from x's shape if it has no Input."""
        if (
            x is None
            or not isinstance(x, (np.ndarray, list, tuple))
            and not hasattr(x, "__array__")
        ):
            raise UnsupportedKerasFeature(
                f"{self.name}.{method}: x must be NumPy arrays; {type(x).__name__} (a generator, "
                "tf.data or "
                "PyDataset input) is not supported by cnnlab"
            )
        if self.n_inputs > 1:
            if not isinstance(x, (list, tuple)) or len(x) != self.n_inputs:
                raise ValueError(
                    f"{self.name}.{method}: the model has {self.n_inputs} inputs; pass a list of "
                    f"{self.n_inputs} arrays"
                )
            return [
                self.check_input(np.asarray(part), shape, method)
                for part, shape in zip(x, self.input_shapes)
            ]
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        return self.check_input(x, self.input_shape, method)

    def check_input(self, x: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
        if x.ndim < 1 or tuple(x.shape[1:]) != tuple(shape):
            hint = (
                " (add the channel axis: x[..., None])"
                if tuple(x.shape[1:]) + (1,) == tuple(shape)
                else ""
            )
            raise ValueError(
                f"{self.name}.{method}: expected input of shape (N, {', '.join(map(str, shape))}), "
                f"received {x.shape}{hint}"
            )
        if x.dtype.kind not in "fiub":
            raise ValueError(f"{self.name}.{method}: x must hold numbers, received dtype {x.dtype}")
        return x.astype(floatx(), copy=False)

    def standardize(self, x: Data, y: np.ndarray, method: str) -> tuple[Data, np.ndarray]:
        """x and y as arrays with matching counts; NaN or infinity refused before training."""
        if y is None:
            raise ValueError(f"{self.name}.{method}: y (the targets) is missing")
        x, y = self.standardize_x(x, method), np.asarray(y)
        if sample_count(x) != len(y):
            raise ValueError(
                f"{self.name}.{method}: x has {sample_count(x)} samples but y has {len(y)}"
            )
        if len(y) == 0:
            raise ValueError(f"{self.name}.{method}: no samples")
        for name, array in [
            *(("x", part) for part in (x if isinstance(x, list) else [x])),
            ("y", y),
        ]:
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(f"{self.name}.{method}: {name} contains NaN or infinity")
        if not isinstance(self.loss, losses_module.SparseCategoricalCrossentropy):
            y = self.match_output_shape(y.astype(floatx(), copy=False), method)
        elif isinstance(self.output_shape, tuple):
            check_sparse_labels(y, self.output_shape[-1], f"{self.name}.{method}")
        return x, y

    def match_output_shape(self, y: np.ndarray, method: str) -> np.ndarray:
        """Targets shaped like the output; (N,) is accepted for a one-unit output, as Keras does."""
        if tuple(y.shape[1:]) == tuple(self.output_shape):
            return y
        if y.size == len(y) * math.prod(self.output_shape):
            return y.reshape(len(y), *self.output_shape)
        raise ValueError(
            f"{self.name}.{method}: y has shape {y.shape} but the model's output is (N, "
            f"{', '.join(map(str, self.output_shape))}); one-hot encode labels with to_categorical "
            "or use loss='sparse_categorical_crossentropy'"
        )

    # ------------------------------------------------------------ weights, files
    def get_weights(self) -> list[np.ndarray]:
        """Every weight array in Keras's order (layer by layer: kernel, bias, ...)."""
        return [value.copy() for value in self.weights_dict().values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load arrays in get_weights() order; shapes must match."""
        targets = list(leaf_weights(self))
        if len(weights) != len(targets):
            raise ValueError(
                f"{self.name}: expected {len(targets)} weight arrays, received {len(weights)}"
            )
        for (layer, key, target), value in zip(targets, weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{layer.describe()}: weight {key!r} has shape {target.shape}, received "
                    f"{value.shape}"
                )
            target[...] = value

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or index (keras.Model.get_layer)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"{self.name}: no layer named {name!r}; layers: {[layer.name for layer in self.layers]}"
        )

    def compile_config(self) -> dict[str, Any] | None:
        if self.loss is None:
            return None
        return {
            "optimizer": self.optimizer.get_config(),
            "loss": self.loss.get_config(),
            "metrics": [metric.name for metric in self.metrics],
        }

    def compile_from_config(self, settings: dict[str, Any]) -> None:
        """compile() with the settings compile_config() wrote."""
        self.compile(
            optimizer=optimizers_module.get(settings["optimizer"]),
            loss=settings["loss"],
            metrics=settings.get("metrics") or None,
        )

    def rngs(self) -> dict[str, np.random.Generator]:
        """Every random generator that training draws from: shuffling and each dropout layer."""
        return {
            "shuffle": self.shuffle_rng,
            **{f"layer/{name}": rng for name, rng in layer_rngs(self)},
        }

    def save(self, path: str | Path, overwrite: bool = True, **kwargs: Any) -> None:
        """Write config, compile settings and weights into one file (no pickle), atomically.
        A suffix registered as another format (".keras") is written in that format."""
        other = saving.other_format(path)
        if other is not None:
            other[0](self, path)
            return
        meta = {
            "model_class": type(self).__name__,
            "model_config": self.get_config(),
            "compile_config": self.compile_config(),
        }
        saving.write_archive(path, meta, self.weights_dict())

    def save_weights(self, path: str | Path, overwrite: bool = True) -> None:
        """Only the weights, in cnnlab's archive format (keras.Model.save_weights)."""
        saving.write_archive(
            path, {"model_class": type(self).__name__, "weights_only": True}, self.weights_dict()
        )

    def load_weights(self, path: str | Path, **kwargs: Any) -> None:
        """Weights written by save_weights (or save) of a model of the same architecture."""
        _, arrays = saving.read_archive(path)
        load_weight_arrays(self, arrays, path)

    def save_checkpoint(self, path: str | Path, epoch: int, history: History) -> None:
        """Everything needed to continue training exactly: weights, optimizer state, random
        states, history so far and the number of finished epochs. Written atomically."""
        meta = {
            "model_config": self.get_config(),
            "compile_config": self.compile_config(),
            "epoch": epoch,
            "history": history.history,
            "epoch_seconds": history.epoch_seconds,
            "rng_states": {name: rng.bit_generator.state for name, rng in self.rngs().items()},
        }
        arrays = {f"weights/{k}": v for k, v in self.weights_dict().items()}
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.get_state().items()})
        saving.write_archive(path, meta, arrays, kind=CHECKPOINT_FORMAT)

    def load_checkpoint(self, path: str | Path) -> tuple[int, dict[str, list[float]], list[float]]:
        """Restore a checkpoint of this model; returns (finished epochs, history, epoch seconds)."""
        meta, arrays = saving.read_archive(path, kind=CHECKPOINT_FORMAT)
        weights = {
            k.removeprefix("weights/"): v for k, v in arrays.items() if k.startswith("weights/")
        }
        if (
            sorted(weights) != sorted(self.weights_dict())
            or meta["model_config"].get("layers") != self.get_config()["layers"]
        ):
            raise ValueError(f"{path}: the checkpoint belongs to a different model")
        load_weight_arrays(self, weights, path)
        self.optimizer.set_state(
            {
                k.removeprefix("optimizer/"): v
                for k, v in arrays.items()
                if k.startswith("optimizer/")
            }
        )
        try:
            for name, rng in self.rngs().items():
                rng.bit_generator.state = meta["rng_states"][name]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"{path}: meta.json: field 'rng_states' does not fit this model ({err!r:.80})"
            ) from None
        return meta["epoch"], meta["history"], meta["epoch_seconds"]


def load_model(path: str | Path, compile: bool = True, **kwargs: Any) -> Model:
    """A model saved by ``Model.save`` (keras.models.load_model); verifies the checksum.
    A suffix registered as another format (".keras") is read in that format."""
    other = saving.other_format(path)
    if other is not None:
        return other[1](path, compile=compile)
    meta, arrays = saving.read_archive(path)
    if meta.get("weights_only"):
        raise ValueError(
            f"{path}: holds only weights (save_weights); build the model, then "
            "model.load_weights(path)"
        )
    try:
        model = model_from_config(meta["model_config"], meta.get("model_class", "Sequential"))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{path}: the model config in the file is incomplete or damaged ({err!r})"
        ) from None
    load_weight_arrays(model, arrays, path)
    settings = meta.get("compile_config")
    if compile and settings:
        try:
            model.compile_from_config(settings)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(
                f"{path}: meta.json: field 'compile_config' is incomplete or damaged ({err})"
            ) from None
    return model


def model_from_config(
    config: dict[str, Any] | list[dict[str, Any]], class_name: str = "Sequential"
) -> Model:
    """A Sequential or functional model from its get_config()."""
    if class_name not in ("Sequential", "Functional"):
        raise ValueError(f"unknown model class {class_name!r}")
    spec = {"class_name": class_name, "config": config}
    limits.check_model_params(
        lambda: deserialize(spec), "the model"
    )  # counted before any weight is allocated
    return deserialize(spec)


def load_weight_arrays(model: Model, arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """Copy arrays keyed "layer/param" into the model; names and shapes must match."""
    expected = model.weights_dict()
    if sorted(expected) != sorted(arrays):
        raise ValueError(f"{path}: the weights in the file do not match the model")
    for key, value in arrays.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{path}: weight {key!r} has shape {value.shape}, the model needs "
                f"{expected[key].shape}"
            )
        expected[key][...] = value


def leaf_weights(model: Model) -> Iterator[tuple[Layer, str, np.ndarray]]:
    """(layer, weight name, array) of every weight, nested models opened, in Keras's order."""
    for layer in model.layers:
        if isinstance(layer, Model):
            yield from leaf_weights(layer)
        else:
            yield from ((layer, key, value) for key, value in layer.weights_dict().items())


def layer_rngs(model: Model, prefix: str = "") -> Iterator[tuple[str, np.random.Generator]]:
    """(name, generator) of every layer that draws random numbers (dropout), nested models
    included."""
    for layer in model.layers:
        if isinstance(layer, Model):
            yield from layer_rngs(layer, f"{prefix}{layer.name}/")
        elif hasattr(layer, "rng"):
            yield f"{prefix}{layer.name}", layer.rng


# ----------------------------------------------------------------------- helpers
def refuse_unsupported(method: str, **arguments: Any) -> None:
    """Keras arguments cnnlab does not implement, refused by name unless left at None."""
    for argument, value in arguments.items():
        if value is not None:
            raise UnsupportedKerasFeature(f"{method}: {argument}= is not supported by cnnlab")


def check_sparse_labels(y: np.ndarray, classes: int, where: str) -> None:
    """Sparse labels are class indices 0..classes-1: another would index past the output, and a
    negative one would silently train the class counted from the end."""
    if y.dtype.kind not in "iub" and (y.dtype.kind != "f" or (y != np.round(y)).any()):
        raise ValueError(
            f"{where}: sparse labels must be whole class indices, received dtype {y.dtype}"
        )
    bad = (y < 0) | (y >= classes)
    if bad.any():
        raise ValueError(
            f"{where}: label {y[bad].flat[0].item()!r} is not a class index of the model's "
            f"{classes} outputs (expected 0 to {classes - 1})"
        )


def sample_count(x: Data) -> int:
    return len(x[0]) if isinstance(x, list) else len(x)


def take(x: Data, index: np.ndarray | slice) -> Data:
    """The samples at index of one array, or of each array of a multi-input x."""
    return [part[index] for part in x] if isinstance(x, list) else x[index]


def copy_outputs(y: np.ndarray | list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Outputs the caller owns (a layer's output may be its reused scratch memory)."""
    return [part.copy() for part in y] if isinstance(y, list) else y.copy()


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, received {batch_size!r}")
    return int(batch_size)


def split_validation(
    x: Data, y: np.ndarray, fraction: float
) -> tuple[Data, np.ndarray, tuple[Data, np.ndarray]]:
    """Keras's rule: the last floor-complement fraction is validation, in the given order."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be between 0 and 1, received {fraction!r}")
    split_at = int(math.floor(len(y) * (1.0 - fraction)))
    if split_at in (0, len(y)):
        raise ValueError(f"{len(y)} samples are too few to split with validation_split={fraction}")
    return (
        take(x, slice(None, split_at)),
        y[:split_at],
        (take(x, slice(split_at, None)), y[split_at:]),
    )


class Totals:
    """Running sample-weighted sums of the loss and of each metric over batches."""

    def __init__(self, metrics: list[metrics_module.Metric] | None = None) -> None:
        self.metrics = list(metrics or [])
        self.loss = 0.0
        self.count = 0
        self.metric_totals = [0.0] * len(self.metrics)
        self.metric_counts = [0] * len(self.metrics)

    def add(self, loss: float, y_true: np.ndarray, y_pred: np.ndarray, count: int) -> None:
        self.loss += loss * count
        self.count += count
        for i, metric in enumerate(self.metrics):
            total, n = metric.batch_totals(y_true, y_pred)
            self.metric_totals[i] += total
            self.metric_counts[i] += n

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.loss / max(self.count, 1)}
        for metric, total, n in zip(self.metrics, self.metric_totals, self.metric_counts):
            logs[metric.name] = total / max(n, 1)
        return logs

    def values(self) -> float | list[float]:
        values = list(self.logs().values())
        return values if len(values) > 1 else values[0]
