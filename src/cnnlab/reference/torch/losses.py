"""Keras's losses in PyTorch: Keras's value, the engine's gradient (``KerasLoss``).

The reported value is Keras's definition: cross-entropy on probabilities clipped to
[1e-7, 1 - 1e-7], averaged over every prediction. When the last activation is the loss's own
(softmax for categorical, sigmoid for binary), the gradient is the exact, unclipped one
computed from the logits (``log_softmax`` / ``binary_cross_entropy_with_logits``):
dL/dz = (p - y) / count, which is also the engine's fused gradient. The clipped and unclipped
values differ only where a probability is clipped (below 1e-7, or within 1e-7 of 1). With any
other last activation the loss is the clipped formula itself, with no gradient where the clip
holds p fixed, as in the engine.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.engine import losses as engine_losses

CLIP = engine_losses.EPSILON


def categorical_value(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return -(y_true * torch.log(y_pred.clamp(CLIP, 1 - CLIP))).sum(-1).mean()


def categorical_from_logits(z: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return -(y_true * F.log_softmax(z, dim=-1)).sum(-1).mean()


def true_class(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """values: (N, ..., K), integer labels: (N, ...) -> (N, ..., 1), the value at each label."""
    return values.gather(-1, labels.reshape(*values.shape[:-1], 1).long())


def sparse_value(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return -torch.log(true_class(y_pred, y_true).clamp(CLIP, 1 - CLIP)).mean()


def sparse_from_logits(z: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return -true_class(F.log_softmax(z, dim=-1), y_true).mean()


def binary_value(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    p = y_pred.clamp(CLIP, 1 - CLIP)
    return -(y_true * torch.log(p) + (1 - y_true) * torch.log(1 - p)).mean()


def binary_from_logits(z: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(z, y_true)


def mse_value(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return ((y_pred - y_true) ** 2).mean()


def mae_value(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    return (y_pred - y_true).abs().mean()


def huber_value(y_pred: torch.Tensor, y_true: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    return F.huber_loss(
        y_pred, y_true, delta=delta
    )  # Keras's: e^2 / 2 within delta, delta (|e| - delta / 2) beyond


LOSS_VALUES = {
    "categorical_crossentropy": categorical_value,
    "sparse_categorical_crossentropy": sparse_value,
    "binary_crossentropy": binary_value,
    "mean_squared_error": mse_value,
    "mean_absolute_error": mae_value,
    "huber": huber_value,
}
LOSSES_FROM_LOGITS = {
    "categorical_crossentropy": categorical_from_logits,
    "sparse_categorical_crossentropy": sparse_from_logits,
    "binary_crossentropy": binary_from_logits,
}


class KerasLoss:
    """The engine's loss (a name such as "categorical_crossentropy" or "mse", a config
    ``{"name": ..., "from_logits": True}``, or an engine Loss), averaged over the batch.

    ``loss(z, y_pred, y_true)``: z is the last layer's pre-activation, y_pred the model's
    output, both (N, ..., K); y_true of the same shape, or integer labels (N, ...) for the
    sparse loss. The value is Keras's (clipped); the gradient comes from z when
    ``from_logits`` (see the module notes). A loss made with ``from_logits=True``
    (``logits_output``) reads the model's output as logits: value and gradient are the stable ones.
    """

    def __init__(
        self, name: str | dict[str, Any] | engine_losses.Loss, last_activation: str = "linear"
    ) -> None:
        engine_loss = engine_losses.get(name)
        if getattr(engine_loss, "label_smoothing", 0):
            raise ValueError("the PyTorch reference has no label smoothing")
        self.name = engine_loss.name
        self.logits_output = engine_loss.from_logits
        self.from_logits = (
            not self.logits_output and engine_loss.fused_activation == last_activation
        )
        self.arguments = (
            {"delta": engine_loss.delta} if isinstance(engine_loss, engine_losses.Huber) else {}
        )

    def __call__(self, z: torch.Tensor, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        if self.logits_output:
            return LOSSES_FROM_LOGITS[self.name](y_pred, y_true)
        value = LOSS_VALUES[self.name](y_pred, y_true, **self.arguments)
        if not self.from_logits:
            return value
        stable = LOSSES_FROM_LOGITS[self.name](z, y_true)
        return stable + (value - stable).detach()  # Keras's value, the stable gradient
