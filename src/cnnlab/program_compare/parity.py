"""Parity at the start: each layer's output and its weights' gradients on the first batch, at the
initial weights, dropout off, the engine against Keras 3 (torch backend, torch's autograd)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.model import Model
from ..errors import CnnlabError
from .record import Recorder, first_batch


def parity_at_start(recorder: Recorder) -> list[dict[str, Any]]:
    """Each layer's output and its weights' gradients on the first batch of the first fit, at
    the initial weights, dropout off (inference mode), engine against Keras 3."""
    from ..reference.keras import import_keras

    x, y = first_batch(recorder.fits[0])
    engine, engine_outputs, engine_loss = engine_parity_pass(recorder, x, y)
    keras_outputs, keras_loss, keras_grads = keras_parity_pass(
        import_keras(), recorder.out_dir / "initial.keras", x, y, list(engine_outputs)
    )
    rows = [loss_row(engine_loss, keras_loss)]
    for layer in engine.layers:
        if layer.name in engine_outputs:
            ours, theirs = engine_outputs[layer.name], keras_outputs[layer.name]
            rows.append(layer_row(layer, ours, theirs, keras_grads))
    return rows


def engine_parity_pass(
    recorder: Recorder, x: Any, y: np.ndarray
) -> tuple[Model, dict[str, np.ndarray], float]:
    """The engine model as it started: every layer's output and the loss in inference mode, then
    one backward pass (each layer's ``grads`` hold its weights' gradients afterwards)."""
    from ..keras_format import load_keras

    engine = load_keras(
        recorder.out_dir / "initial.keras", compile=False
    )  # the engine model as it started
    engine.compile(optimizer="sgd", loss=recorder.model.loss)
    trace: list[tuple[str, np.ndarray]] = []
    y_pred = engine.forward(x, training=False, trace=trace)
    engine_outputs = {name: out.copy() for name, out in trace}
    engine_loss = engine.loss(y, y_pred)
    engine.backward_from_loss(y, y_pred)
    return engine, engine_outputs, engine_loss


def loss_row(engine_loss: float, keras_loss: float) -> dict[str, Any]:
    """The parity table's first row: the loss of both engines on the first batch."""
    return {
        "layer": "loss",
        "class": "",
        "output_max_abs": abs(engine_loss - keras_loss),
        "output_max_rel": abs(engine_loss - keras_loss) / max(abs(keras_loss), 1e-12),
        "grad_max_rel": None,
    }


def layer_row(
    layer: Any, ours: np.ndarray, theirs: np.ndarray, keras_grads: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One layer's row: its output differences and the largest relative difference of its
    weights' gradients (None for a layer without weights)."""
    grads = [
        relative_difference(layer_grad, keras_grads[f"{layer.name}/{key}"])
        for key, layer_grad in layer_gradients(layer).items()
        if f"{layer.name}/{key}" in keras_grads
    ]
    return {
        "layer": layer.name,
        "class": type(layer).__name__,
        "output_max_abs": float(np.abs(ours - theirs).max()) if ours.size else 0.0,
        "output_max_rel": relative_difference(ours, theirs),
        "grad_max_rel": max(grads) if grads else None,
    }


def layer_gradients(layer: Any) -> dict[str, np.ndarray]:
    """A layer's weight gradients keyed like Keras's variable paths below the layer
    (nested: "inner/kernel")."""
    if isinstance(layer, Model):
        return {key: value for key, value in layer.grads.items()}
    return dict(layer.grads)


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max(max |theirs|, 1e-6): one number per array, scale-free."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise CnnlabError(f"parity: shapes differ, {ours.shape} against Keras's {theirs.shape}")
    return (
        float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-6)) if ours.size else 0.0
    )


def keras_parity_pass(
    keras: Any, path: Path, x: Any, y: np.ndarray, names: Sequence[str]
) -> tuple[dict[str, np.ndarray], float, dict[str, np.ndarray]]:
    """Keras 3 on torch: every named layer's output, the loss and every weight's gradient, in
    inference mode, with torch's autograd."""
    import torch

    from ..reference.keras import quiet_keras

    with quiet_keras():
        model = keras.models.load_model(path)
        probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
        inputs = [torch.tensor(part) for part in x] if isinstance(x, list) else torch.tensor(x)
        outputs = probe(inputs, training=False)
        loss = model.loss(torch.tensor(y), outputs[-1])
    variables = [
        (f"{layer.name}/{variable_key(layer, v)}", v)
        for layer in model.layers
        for v in layer.trainable_weights
    ]
    grads = torch.autograd.grad(loss, [v.value for _, v in variables], allow_unused=True)
    gradients = {key: g.detach().numpy() for (key, _), g in zip(variables, grads) if g is not None}
    return (
        {name: out.detach().numpy() for name, out in zip(names, outputs)},
        float(loss.detach()),
        gradients,
    )


def variable_key(layer: Any, variable: Any) -> str:
    """A Keras variable's name below its layer: "kernel", or "conv2d/kernel" inside a nested
    model."""
    path = variable.path
    prefix = f"{layer.name}/"
    return path[len(prefix) :] if path.startswith(prefix) else variable.name
