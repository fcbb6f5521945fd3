"""Models: ``Model``, the training machinery that ``Sequential`` (sequential.py) and functional
models (graph.py) share.

One training step: forward through the layers, the loss, backward through the layers in
reverse (each stores its weight gradients), then one optimizer step on every trainable
weight. ``Sequential`` orders its layers in a line; a functional model (``graph.Functional``,
made by ``Model(inputs, outputs)`` as in Keras) orders them as a directed acyclic graph.
A model is itself a layer, so a model can be used inside another.

``Model`` keeps Keras's methods; the checks of x and y are in ``model_inputs``, the pieces of
fit/evaluate/predict around the training step in ``training_loop``, the files in
``model_files``. Their public names stay importable from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import batches, model_files, model_inputs, training_loop
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .callbacks import Callback, CallbackList, History
from .config import default_seed
from .errors import UnsupportedKerasFeature
from .layers import Layer, unique_name
from .model_files import CHECKPOINT_FORMAT, load_model, load_weight_arrays, model_from_config
from .model_inputs import Data, check_sparse_labels, refuse_unsupported, sample_count, take
from .summary import print_summary
from .threads import ThreadFitter
from .training_loop import (
    EpochPlan,
    Totals,
    TrainingDiverged,
    check_batch_size,
    check_compile_arguments,
    check_finite,
    copy_outputs,
    fit_hooks,
    fit_validation,
    join_outputs,
    loss_and_metrics,
    predict_batches,
    progress_hooks,
    split_validation,
)

# Model, and the names callers imported from this module before it was split
__all__ = [
    "CHECKPOINT_FORMAT",
    "Data",
    "Model",
    "Totals",
    "TrainingDiverged",
    "check_batch_size",
    "check_sparse_labels",
    "copy_outputs",
    "layer_rngs",
    "leaf_weights",
    "load_model",
    "load_weight_arrays",
    "model_from_config",
    "refuse_unsupported",
    "sample_count",
    "split_validation",
    "take",
]


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
        check_compile_arguments(
            self.name, loss, metrics, loss_weights, weighted_metrics, steps_per_execution
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
        validation_split takes the *last* fraction of the data, before any shuffling."""
        self.require_compiled("fit")
        refuse_unsupported("fit", class_weight=class_weight, sample_weight=sample_weight)
        refuse_unsupported(
            "fit", steps_per_epoch=steps_per_epoch, validation_steps=validation_steps
        )
        x, y = self.standardize(x, y, "fit")
        batch_size = check_batch_size(batch_size or 32)
        x, y, validation_data = fit_validation(self, x, y, validation_split, validation_data)
        plan = EpochPlan(
            batch_size, epochs, shuffle, validation_data, validation_batch_size, validation_freq
        )
        hooks = fit_hooks(
            self, callbacks, verbose, epochs, batches.steps_per_epoch(sample_count(x), batch_size)
        )
        hooks.on_train_begin()  # BackupAndRestore may restore a checkpoint and set resume_epoch
        with self.fitted_threads():  # BLAS threads: the cores other work leaves free
            logs = self.epochs_loop(x, y, plan, max(initial_epoch, self.resume_epoch), hooks)
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
        self, x: Data, y: np.ndarray, plan: EpochPlan, first: int, hooks: Callback
    ) -> dict[str, float]:
        """Epochs first..plan.epochs-1, each with its validation (training_loop.epochs_loop)."""
        return training_loop.epochs_loop(self, x, y, plan, first, hooks)

    def train_epoch(
        self, x: Data, y: np.ndarray, batch_size: int, shuffle: bool, hooks: Callback
    ) -> dict[str, float]:
        """One pass over the data in mini-batches (training_loop.train_epoch)."""
        return training_loop.train_epoch(self, x, y, batch_size, shuffle, hooks)

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
        """The divergence guard (training_loop.check_finite): TrainingDiverged on NaN or
        infinity in the loss, the gradients ("grads") or the weights ("weights")."""
        check_finite(self, loss, arrays)

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
        hooks = progress_hooks(
            self, callbacks, verbose, batches.steps_per_epoch(len(y), batch_size)
        )
        with self.fitted_threads():
            logs = self.test_loop(x, y, batch_size, hooks)
        return logs if return_dict else loss_and_metrics(logs)

    def test_loop(
        self, x: Data, y: np.ndarray, batch_size: int, hooks: Callback
    ) -> dict[str, float]:
        """The loss and metrics over (x, y) in batches, at inference (training_loop.test_loop)."""
        return training_loop.test_loop(self, x, y, batch_size, hooks)

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
        hooks = progress_hooks(self, callbacks, verbose, batches.steps_per_epoch(count, batch_size))
        hooks.on_predict_begin()
        with self.fitted_threads():
            outputs = predict_batches(self, x, count, batch_size, hooks)
        hooks.on_predict_end()
        return join_outputs(self, outputs)

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
        from x's shape if it has no Input (model_inputs.standardize_x)."""
        return model_inputs.standardize_x(self, x, method)

    def check_input(self, x: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
        return model_inputs.check_input(self, x, shape, method)

    def standardize(self, x: Data, y: np.ndarray, method: str) -> tuple[Data, np.ndarray]:
        """x and y as arrays with matching counts; NaN or infinity refused before training."""
        return model_inputs.standardize(self, x, y, method)

    def match_output_shape(self, y: np.ndarray, method: str) -> np.ndarray:
        """Targets shaped like the output; (N,) is accepted for a one-unit output, as Keras does."""
        return model_inputs.match_output_shape(self, y, method)

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
        model_files.save_model(self, path)

    def save_weights(self, path: str | Path, overwrite: bool = True) -> None:
        """Only the weights, in cnnlab's archive format (keras.Model.save_weights)."""
        model_files.save_weights(self, path)

    def load_weights(self, path: str | Path, **kwargs: Any) -> None:
        """Weights written by save_weights (or save) of a model of the same architecture."""
        model_files.load_weights(self, path)

    def save_checkpoint(self, path: str | Path, epoch: int, history: History) -> None:
        """Everything needed to continue training exactly: weights, optimizer state, random
        states, history so far and the number of finished epochs. Written atomically."""
        model_files.save_checkpoint(self, path, epoch, history)

    def load_checkpoint(self, path: str | Path) -> tuple[int, dict[str, list[float]], list[float]]:
        """Restore a checkpoint of this model; returns (finished epochs, history, epoch seconds)."""
        return model_files.load_checkpoint(self, path)


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
