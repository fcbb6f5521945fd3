"""``Sequential``: a linear stack of layers (keras.Sequential), the most common ``Model``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .fused import execution_steps, step_layers
from .layers import InputLayer, Layer, deserialize, register_model
from .model import Model


@register_model
class Sequential(Model):
    """A linear stack of layers (keras.Sequential)."""

    default_name = "sequential"

    def __init__(
        self,
        layers: list[Layer] | None = None,
        name: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, seed=seed, trainable=trainable)
        self.input_layer: InputLayer | None = None
        self._layers: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers, without the input layer (as Keras)."""
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self.input_layer is not None

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self.input_layer.shape if self.input_layer else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self._layers[-1].output_shape if self._layers else self.input_shape

    @property
    def output_layer(self) -> Layer:
        return self._layers[-1]

    def add(self, layer: Layer) -> None:
        """Append a layer; with a known input shape it is built (and checked) at once."""
        layer = getattr(
            layer, "keras_history_layer", layer
        )  # keras.Input(...) gives a symbolic tensor
        if isinstance(layer, InputLayer):
            if self.input_layer is not None or self._layers:
                raise ValueError(
                    f"{self.name}: an Input can only be the first element of a Sequential model"
                )
            self.input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: expected a layer, received {layer!r}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(
                f"{self.name}: all layer names must be unique; {layer.name!r} appears twice"
            )
        if not self._layers and self.input_layer is None and layer.declared_input_shape:
            self.input_layer = InputLayer(shape=layer.declared_input_shape)
        self._layers.append(layer)
        if self.input_layer is not None:
            self.build(self.input_layer.shape)

    def pop(self) -> Layer:
        """Remove the last layer (keras.Sequential.pop)."""
        layer = self._layers.pop()
        if self.built:
            self.build(self.input_layer.shape)
        return layer

    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator | None = None) -> None:
        """Build every layer not yet built, in order; a misfit raises ValueError at once."""
        if self.input_layer is None:
            self.input_layer = InputLayer(shape=tuple(input_shape))
        shape = self.input_layer.shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape, self.init_rng)
            elif tuple(layer.input_shape) != tuple(shape):
                raise ValueError(
                    f"{self.name}: {layer.describe()} was built for input {layer.input_shape}, "
                    f"here it receives {shape}"
                )
            shape = layer.output_shape
        self.update_gradient_flags()
        self.link_symbolic_tensors()

    def link_symbolic_tensors(self) -> None:
        """Give ``model.input`` and every ``layer.output`` a symbolic tensor, as Keras does, so that
        ``Model(inputs=model.input, outputs=[layer.output ...])`` builds a feature-map model."""
        from .graph import KerasTensor

        tensor = getattr(self.input_layer, "output", None) or KerasTensor(
            self.input_layer.shape, self.input_layer
        )
        self.input_layer.output = tensor
        for layer in self._layers:
            layer.inbound = [tensor]
            tensor = KerasTensor(layer.output_shape, layer)
            if not isinstance(layer, Model):  # a nested model keeps its own .output
                layer.output = tensor
        self.last_tensor = tensor

    @property
    def input(self) -> Any:
        if not self.built:
            raise ValueError(
                f"{self.name}: the model has no input yet; start it with keras.Input(shape=...)"
            )
        return self.input_layer.output

    @property
    def output(self) -> Any:
        return self.last_tensor if self._layers else self.input

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.built:
            if tuple(input_shape) != tuple(self.input_shape):
                raise ValueError(
                    f"{self.name}: expects input {self.input_shape}, received {tuple(input_shape)}"
                )
            return self.output_shape
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def update_gradient_flags(self) -> None:
        """A layer needs its input gradient when a layer before it has weights to train (or the
        model's own input needs one); backward stops at the first layer that needs neither."""
        needed = self.needs_input_grad
        self.backward_start = len(self._layers)
        for i, layer in enumerate(self._layers):
            layer.needs_input_grad = needed
            trains = self.has_trainable_weights(layer)
            if (needed or trains) and self.backward_start == len(self._layers):
                self.backward_start = i
            needed = needed or trains
        self.steps = execution_steps(self._layers)
        self.ran_fused = True  # what the last forward ran: the steps, or the layers one by one
        first = (
            self._layers[self.backward_start] if self.backward_start < len(self._layers) else None
        )
        self.backward_step = next(
            (i for i, step in enumerate(self.steps) if first in step_layers(step)), len(self.steps)
        )

    def forward(
        self, x: np.ndarray, training: bool = False, trace: list | None = None
    ) -> np.ndarray:
        """x: (N, *input_shape) -> (N, *output_shape); trace collects (layer name, output) of
        every layer, which the fused steps (fused.py) do not compute, so it runs layer by
        layer. backward_from goes back the way the last forward went."""
        self.ran_fused = trace is None
        for step in self.steps if self.ran_fused else self._layers:
            x = step.forward(x, training=training)
            if trace is not None:
                trace.append((step.name, x))
        return x

    def backward_from(self, grad: np.ndarray, fused: bool) -> np.ndarray | None:
        """grad: d(loss)/d(output), or d(loss)/d(the output layer's pre-activation) when fused."""
        if self.ran_fused:
            steps = self.steps[self.backward_step :]
        else:
            steps = self._layers[self.backward_start :]
        if not steps:
            return None  # nothing to train
        if fused:
            grad = steps[-1].backward_linear(grad)
            steps = steps[:-1]
        for step in reversed(steps):
            grad = step.backward(grad)
        return grad if self.needs_input_grad else None

    def summary_rows(self) -> list[tuple[str, str, str, int]]:
        """(name, class, output shape, parameter count) per layer, as summary() shows them."""
        return [
            (
                layer.name,
                type(layer).__name__,
                str((None, *layer.output_shape)) if layer.built else "?",
                layer.count_params(),
            )
            for layer in self._layers
        ]

    def get_config(self) -> dict[str, Any]:
        """{"name": ..., "layers": [{"class_name": ..., "config": {...}}, ...]} (JSON-able)."""
        specs = (
            [{"class_name": "InputLayer", "config": self.input_layer.get_config()}]
            if self.input_layer
            else []
        )
        specs += [
            {"class_name": type(layer).__name__, "config": layer.get_config()}
            for layer in self._layers
        ]
        return {"name": self.name, "layers": specs}

    @classmethod
    def from_config(
        cls, config: dict[str, Any] | list[dict[str, Any]], seed: int | None = None
    ) -> Sequential:
        """The model ``get_config`` describes (a dict with "layers", or the bare list)."""
        specs = config if isinstance(config, list) else config.get("layers")
        if not isinstance(specs, list):
            raise ValueError(
                "a model config needs a list of layers: {'layers': [{'class_name': ..., 'config': "
                "...}]}"
            )
        name = None if isinstance(config, list) else config.get("name")
        return cls([deserialize(spec) for spec in specs], name=name, seed=seed)
