"""The torch twin trained as the engine trains (``TorchTrainer``): the same start, the same
batches in the same order, Keras's bookkeeping and the engine's callbacks.

The callbacks see an engine model (by default the trainer's own engine twin) that holds the
torch weights at every epoch's end, so ModelCheckpoint saves and EarlyStopping remembers the
weights being trained; weights a callback sets on it come back into the torch model.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from cnnlab.engine.batches import steps_per_epoch
from cnnlab.engine.callbacks import Callback, CallbackList, LambdaCallback
from cnnlab.engine.config import floatx
from cnnlab.engine.model import Totals
from cnnlab.engine.sequential import Sequential
from cnnlab.reference.common import engine_model_from_config, fit_inputs
from cnnlab.reference.torch.layout import TORCH_DTYPES
from cnnlab.reference.torch.losses import KerasLoss
from cnnlab.reference.torch.model import (
    Config,
    TorchSequential,
    build_torch_twin,
    copy_weights_from_torch,
    copy_weights_to_torch,
)
from cnnlab.reference.torch.onednn import onednn
from cnnlab.reference.torch.optimizers import make_torch_optimizer

ValidationData = tuple[np.ndarray, np.ndarray] | None


def train_step(
    torch_model: TorchSequential,
    loss: KerasLoss,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward, one optimizer step; returns (loss, y_pred), both detached."""
    z, y_pred = torch_model.forward_with_logits(x)
    value = loss(z, y_pred, y)
    optimizer.zero_grad(set_to_none=True)
    with onednn(enabled=not torch_model.needs_native_convolution):
        value.backward()
    optimizer.step()
    return value.detach(), y_pred.detach()


def fit_callbacks(
    callbacks: list[Callback] | None,
    on_epoch_end: Callable[[int, dict[str, float]], Any] | None,
    model: Sequential,
    **params: Any,
) -> CallbackList:
    """The CallbackList of ``Model.fit``: the callbacks, then a History, then a progress bar
    unless ``params["verbose"]`` is 0; each handed ``model`` and Keras's params
    {"verbose", "epochs", "steps"}. A plain ``on_epoch_end(epoch, logs)`` function joins the
    callbacks as a LambdaCallback."""
    extra = [] if on_epoch_end is None else [LambdaCallback(on_epoch_end=on_epoch_end)]
    return CallbackList(
        [*(callbacks or []), *extra],
        add_history=True,
        add_progbar=params["verbose"] not in (0, False),
        model=model,
        **params,
    )


class TorchTrainer:
    """Trains the torch twin of a cnnlab config with the engine's rules and Keras's bookkeeping.

    Same start: weights from ``Sequential.from_config(config, seed=seed)``, and the shuffling
    generator of that model, so one seed gives the same initial weights and batch order as
    the engine. Inputs and targets are checked and shaped by that engine model's own rules.
    Dropout masks come from torch's generator, seeded from ``seed`` and kept by the trainer
    (torch's global random state is left as it was). ``threads``, if given, is passed to
    ``torch.set_num_threads`` (process-wide); by default torch's own setting stays.
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
        if threads is not None:
            torch.set_num_threads(threads)
        self.engine_model = engine_model_from_config(
            config, "PyTorch", seed
        )  # checks inputs as the engine does
        self.engine_model.compile(
            optimizer=optimizer_config, loss=loss_name, metrics=["accuracy"] if accuracy else None
        )
        self.shuffle_rng = self.engine_model.shuffle_rng
        self.torch_model = build_torch_twin(self.engine_model)
        self.dtype = TORCH_DTYPES[floatx()]
        self.optimizer = make_torch_optimizer(optimizer_config, self.torch_model.parameters())
        self.loss = KerasLoss(loss_name, self.torch_model.last_activation)
        self.metrics = self.engine_model.metrics
        self.torch_rng_state = seeded_torch_generator(self.engine_model.seed).get_state()
        self.history: dict[str, list[float]] = {}
        self.epoch_seconds: list[float] = []

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int = 32,
        epochs: int = 1,
        validation_split: float = 0.0,
        validation_data: ValidationData = None,
        shuffle: bool = True,
        shuffle_rng: np.random.Generator | None = None,
        callbacks: list[Callback] | None = None,
        verbose: int | str = 0,
        on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
        engine_model: Sequential | None = None,
    ) -> dict[str, list[float]]:
        """Train like ``Sequential.fit``; returns the history
        {"loss", "accuracy", "val_loss", "val_accuracy"} (the History's ``history``).

        validation_split takes the last floor-complement fraction before shuffling; each epoch
        is shuffled with ``shuffle_rng.permutation(n)`` (default: this trainer's generator).
        ``callbacks`` get ``Model.fit``'s hooks, in its order, with its params; their ``model``
        is ``engine_model`` (default: the trainer's engine twin), and ``stop_training`` set on it
        stops after the current batch. ``on_epoch_end(epoch, logs)``: a plain function called
        at each epoch's end. ``history`` and ``epoch_seconds`` (training time per epoch,
        validation excluded) hold the last fit's epochs.
        """
        rng = (self.shuffle_rng if shuffle_rng is None else shuffle_rng) if shuffle else None
        x, y, validation_data, batch_size, rng = fit_inputs(
            self.engine_model, x, y, batch_size, validation_split, validation_data, rng
        )
        model = self.engine_model if engine_model is None else engine_model
        steps = steps_per_epoch(len(x), batch_size)
        hooks = fit_callbacks(
            callbacks, on_epoch_end, model, verbose=verbose, epochs=epochs, steps=steps
        )
        self.train(x, y, batch_size, epochs, rng, validation_data, hooks)
        self.history = hooks.history.history
        return self.history

    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        epochs: int,
        rng: np.random.Generator | None,
        validation_data: ValidationData,
        hooks: CallbackList,
    ) -> None:
        """on_train_begin, the epochs, on_train_end (as ``Model.fit``); then the weights a
        callback left on the engine model (EarlyStopping's best ones) into the torch model."""
        self.epoch_seconds = []
        hooks.model.stop_training = False
        hooks.on_train_begin()
        with self.own_random_state():
            logs = self.epochs_loop(x, y, batch_size, epochs, rng, validation_data, hooks)
        hooks.on_train_end(logs)
        if self.epoch_seconds:  # the engine model has held the torch weights since an epoch end
            copy_weights_to_torch(hooks.model, self.torch_model)

    def epochs_loop(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        epochs: int,
        rng: np.random.Generator | None,
        validation_data: ValidationData,
        hooks: CallbackList,
    ) -> dict[str, float]:
        """Epochs 0..epochs-1, each with its validation; stops early when a callback asks
        (``Model.epochs_loop``). Returns the last epoch's logs."""
        logs: dict[str, float] = {}
        for epoch in range(epochs):
            hooks.on_epoch_begin(epoch)
            logs = self.train_epoch(x, y, batch_size, rng, hooks)
            if validation_data is not None:
                val_logs = self.evaluate_logs(*validation_data, batch_size, hooks)
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            self.epoch_end(epoch, logs, hooks)
            if hooks.model.stop_training:
                break
        return logs

    def epoch_end(self, epoch: int, logs: dict[str, float], hooks: CallbackList) -> None:
        """The epoch-end hooks on an engine model that holds the torch weights (and the epoch's
        training time, which History records); weights a hook sets come back into torch."""
        model = hooks.model
        model.last_epoch_seconds = self.epoch_seconds[-1]
        copy_weights_from_torch(self.torch_model, model)
        hooks.on_epoch_end(epoch, logs)
        copy_weights_to_torch(model, self.torch_model)

    def train_epoch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None,
        hooks: CallbackList | None = None,
    ) -> dict[str, float]:
        """One pass in mini-batches, in the engine's order; the logs are sample-weighted means.
        With hooks: the batch hooks with the running logs, and the pass ends after a batch
        that set ``stop_training`` on the hooks' model."""
        hooks = CallbackList() if hooks is None else hooks
        order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
        self.torch_model.train()
        totals = Totals(self.metrics)
        start = time.perf_counter()
        for step, begin in enumerate(range(0, len(x), batch_size)):
            hooks.on_train_batch_begin(step)
            batch = order[begin : begin + batch_size]
            loss, y_pred = train_step(
                self.torch_model, self.loss, self.optimizer, *self.tensors(x[batch], y[batch])
            )
            totals.add(loss.item(), y[batch], y_pred.detach().numpy(), len(batch))
            hooks.on_train_batch_end(step, totals.logs())
            if getattr(hooks.model, "stop_training", False):
                break
        self.epoch_seconds.append(time.perf_counter() - start)
        return totals.logs()

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> tuple[float, float]:
        """(loss, accuracy) with dropout off (keras.Model.evaluate); accuracy is NaN without the
        metric."""
        logs = self.evaluate_logs(*self.engine_model.standardize(x, y, "evaluate"), batch_size)
        return logs["loss"], logs.get("accuracy", math.nan)

    @torch.no_grad()
    def evaluate_logs(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, hooks: CallbackList | None = None
    ) -> dict[str, float]:
        """The loss and metrics over (x, y) in batches, dropout off; with hooks, the on_test_*
        hooks of fit's validation (``Model.test_loop``)."""
        hooks = CallbackList() if hooks is None else hooks
        self.torch_model.eval()
        totals = Totals(self.metrics)
        hooks.on_test_begin()
        for step, begin in enumerate(range(0, len(x), batch_size)):
            hooks.on_test_batch_begin(step)
            y_batch = y[begin : begin + batch_size]
            xb, yb = self.tensors(x[begin : begin + batch_size], y_batch)
            z, y_pred = self.torch_model.forward_with_logits(xb)
            totals.add(self.loss(z, y_pred, yb).item(), y_batch, y_pred.numpy(), len(yb))
            hooks.on_test_batch_end(step, totals.logs())
        logs = totals.logs()
        hooks.on_test_end(logs)
        return logs

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """x: (N, *input_shape) -> (N, *output_shape) float32 outputs
        (probabilities after softmax)."""
        x = self.engine_model.standardize_x(x, "predict")
        self.torch_model.eval()
        outputs = [
            self.torch_model(self.tensors(x[i : i + batch_size])[0]).numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def set_weights_from(self, model: Sequential) -> None:
        """Load the weights of an engine model of the same config."""
        copy_weights_to_torch(model, self.torch_model)

    def to_engine(self, model: Sequential | None = None) -> Sequential:
        """The trained weights in an engine model of the same config (by default the trainer's
        own compiled engine twin, ready to save or evaluate); returns that model."""
        model = self.engine_model if model is None else model
        copy_weights_from_torch(self.torch_model, model)
        return model

    # ---------------------------------------------------------------- helpers
    @contextlib.contextmanager
    def own_random_state(self) -> Iterator[None]:
        """Run with this trainer's torch generator state (dropout masks), restoring the global
        one."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_rng_state)
            try:
                yield
            finally:
                self.torch_rng_state = torch.get_rng_state()

    def tensors(
        self, x: np.ndarray, y: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """NumPy batches -> torch tensors (copies, so read-only arrays are fine)."""
        tx = torch.tensor(x, dtype=self.dtype)
        return tx, None if y is None else torch.tensor(y)


def seeded_torch_generator(seed: int | None) -> torch.Generator:
    """A torch generator from a seed, or from fresh entropy without one."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
