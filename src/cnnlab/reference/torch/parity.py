"""How closely the engine and its torch twin agree, quantity by quantity (``parity_report``).

Forward outputs, the loss and every weight gradient on a first batch, then the weights after
a number of optimizer steps; ``format_parity`` prints the rows as a table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cnnlab.engine import layers as engine_layers
from cnnlab.engine import optimizers as engine_optimizers
from cnnlab.engine.sequential import Sequential
from cnnlab.reference.torch.layout import engine_layout
from cnnlab.reference.torch.losses import KerasLoss
from cnnlab.reference.torch.model import TorchSequential, build_torch_twin, torch_param
from cnnlab.reference.torch.onednn import onednn
from cnnlab.reference.torch.optimizers import make_torch_optimizer
from cnnlab.reference.torch.trainer import train_step


def parity_report(
    model: Sequential,
    x: np.ndarray,
    y: np.ndarray,
    steps: int = 100,
    optimizer_config: dict[str, Any] | str | None = None,
    loss_name: str | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """How closely the engine and its torch twin agree, quantity by quantity.

    Works on a copy of ``model`` (the model itself is left untouched) with every Dropout
    rate set to 0, and on a torch twin in train mode (BatchNormalization uses the batch's
    statistics and updates its moving ones, as the engine's training forward) with identical
    weights, moving statistics included. Compares, on the first batch, every layer's forward
    output, the loss and every weight gradient; then the weights (moving statistics included)
    after ``steps`` optimizer steps on the batches of (x, y) in a fixed cycle.
    The optimizer and loss default to the model's compile settings, with fresh state.

    Rows: {"quantity": "forward"|"loss"|"gradient"|"weights", "layer", "param", "steps",
    "max_abs", "max_rel"}, where max_rel = max|engine - torch| / max(max|torch|, tiny).
    """
    engine, optimizer_config = parity_engine(model, optimizer_config, loss_name)
    twin = build_torch_twin(
        engine
    ).train()  # dropout rates are 0: train mode only matters for BatchNormalization
    loss = KerasLoss(engine.loss.name, twin.last_activation)
    optimizer = make_torch_optimizer(optimizer_config, twin.parameters())
    x, y = engine.standardize(x, y, "parity_report")
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    rows = first_batch_rows(engine, twin, loss, *batches[0])
    for step in range(steps):
        xb, yb = batches[step % len(batches)]
        engine.train_step(xb, yb)
        train_step(twin, loss, optimizer, *twin_tensors(twin, xb, yb))
    return rows + [
        parity_row("weights", layer, key, value, torch_param(twin, layer, key), steps)
        for layer, key, value in engine_weights(engine)
    ]


def parity_engine(
    model: Sequential, optimizer_config: dict[str, Any] | str | None, loss_name: str | None
) -> tuple[Sequential, dict[str, Any] | str]:
    """The engine side of ``parity_report``: a dropout-free compiled copy of model, and the
    optimizer config both sides use (the model's compile settings unless given)."""
    if (
        model.optimizer is None
        and optimizer_config is None
        or model.loss is None
        and loss_name is None
    ):
        raise ValueError("parity_report needs a compiled model, or optimizer_config and loss_name")
    optimizer_config = optimizer_config or model.optimizer.get_config()
    return dropout_free_copy(
        model, optimizer_config, loss_name or model.loss.name
    ), optimizer_config


def dropout_free_copy(
    model: Sequential, optimizer_config: dict[str, Any] | str, loss_name: str
) -> Sequential:
    """A compiled copy of model with the same weights, every Dropout rate 0 and a fresh
    optimizer."""
    copy = Sequential.from_config(model.get_config(), seed=0)
    for source, target in zip(
        model.layers, copy.layers
    ):  # every weight, moving statistics included
        for key, value in source.weights_dict().items():
            target.weights_dict()[key][...] = value
    copy.compile(optimizer=engine_optimizers.get(optimizer_config), loss=loss_name)
    for layer in copy.layers:
        if isinstance(layer, engine_layers.Dropout):
            layer.rate = 0.0
    return copy


def engine_weights(model: Sequential) -> list[tuple[str, str, np.ndarray]]:
    return [
        (layer.name, key, value)
        for layer in model.layers
        for key, value in layer.weights_dict().items()
    ]


def twin_tensors(
    twin: TorchSequential, x: np.ndarray, y: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = next(twin.parameters()).dtype
    return torch.tensor(x, dtype=dtype), torch.tensor(y)


def first_batch_rows(
    engine: Sequential, twin: TorchSequential, loss: KerasLoss, x: np.ndarray, y: np.ndarray
) -> list[dict[str, Any]]:
    """Forward outputs, loss and weight gradients of one batch in both engines."""
    trace: list[tuple[str, np.ndarray]] = []
    h = engine.forward(x, training=True, trace=trace)  # layer by layer, each output kept
    outputs = [out.copy() for _, out in trace]
    engine_loss = engine.loss(y, h)
    engine.backward_from_loss(y, h)
    torch_x, torch_y = twin_tensors(twin, x, y)
    torch_outputs, z = twin.trace(torch_x)
    torch_loss = loss(z, torch_outputs[-1], torch_y)
    twin.zero_grad(set_to_none=True)
    with onednn(enabled=not twin.needs_native_convolution):
        torch_loss.backward()
    rows = [
        parity_row("forward", layer.name, "", ours, theirs)
        for layer, ours, theirs in zip(engine.layers, outputs, torch_outputs)
    ]
    rows.append(parity_row("loss", "", "", np.array(engine_loss), torch_loss))
    for layer in engine.layers:
        rows += [
            parity_row("gradient", layer.name, key, grad, torch_param(twin, layer.name, key).grad)
            for key, grad in layer.grads.items()
        ]
    return rows


def parity_row(
    quantity: str, layer: str, param: str, ours: np.ndarray, theirs: torch.Tensor, steps: int = 0
) -> dict[str, Any]:
    """One comparison; a weight or gradient in torch's layout is turned to the engine's first."""
    theirs = engine_layout(theirs) if param else theirs.detach().cpu().numpy()
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(
            f"{quantity} {layer}/{param}: engine shape {ours.shape} vs torch {theirs.shape}"
        )
    max_abs = float(np.abs(ours - theirs).max(initial=0.0))
    scale = max(float(np.abs(theirs).max(initial=0.0)), np.finfo(np.float64).tiny)
    return {
        "quantity": quantity,
        "layer": layer,
        "param": param,
        "steps": steps,
        "max_abs": max_abs,
        "max_rel": max_abs / scale,
    }


def format_parity(rows: list[dict[str, Any]]) -> str:
    """The rows of ``parity_report`` as a plain-text table (one line per quantity)."""
    header = (
        f"{'quantity':<10} {'layer':<18} {'param':<7} {'steps':>5} {'max abs':>10} {'max rel':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['quantity']:<10} {row['layer'] or '-':<18} {row['param'] or '-':<7} "
            f"{row['steps']:>5} "
            f"{row['max_abs']:>10.2e} {row['max_rel']:>10.2e}"
        )
    return "\n".join(lines)
