"""The functional API: ``Input`` -> layers called on symbolic tensors -> ``Model(inputs, outputs)``.

Calling a layer on a ``KerasTensor`` records the call (the layer's ``inbound`` tensors) and
returns the symbolic output, whose shape ``compute_output_shape`` gives; no weights exist yet.
``Functional`` walks back from its outputs to its inputs, orders the layers so that each
comes after the layers it reads (a topological order), and builds them with the model's own
seeded generator. Forward runs the layers in that order; backward runs them in reverse and
adds up the gradients of a tensor read by several layers (the chain rule at a fork).

Calling a layer or a model on arrays instead computes at once (eager mode) and returns an
``EagerArray``: a NumPy array that also answers ``.numpy()``, as an eager tensor does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import floatx
from .errors import UnsupportedKerasFeature
from .layers import InputLayer, Layer, deserialize, register_model
from .model import Model


class EagerArray(np.ndarray):
    """A NumPy array that also answers ``.numpy()`` (tutorials write ``model(x[:1]).numpy()``)."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


def eager(value: Any) -> Any:
    """An array (or list of arrays) as EagerArray, without copying."""
    if isinstance(value, (list, tuple)):
        return type(value)(eager(v) for v in value)
    return np.asarray(value).view(EagerArray)


class KerasTensor:
    """A symbolic tensor: the shape (without the batch axis) of a layer's output, and that layer."""

    def __init__(self, shape: tuple[int, ...], layer: Layer) -> None:
        self.shape_without_batch = tuple(shape)
        self.keras_history_layer = layer

    @property
    def shape(self) -> tuple[int | None, ...]:
        """(None, *shape), as Keras prints it."""
        return (None, *self.shape_without_batch)

    @property
    def dtype(self) -> str:
        return floatx()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numpy(self) -> np.ndarray:
        raise ValueError(
            "a symbolic tensor (from keras.Input) has no value; call the model on arrays instead"
        )

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, name={self.keras_history_layer.name}>"


def Input(
    shape: tuple[int, ...] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    batch_shape: tuple[int | None, ...] | None = None,
    **kwargs: Any,
) -> KerasTensor:
    """The input of a model, without the batch axis: ``Input(shape=(28, 28, 1))`` (keras.Input).
    Use it as the first element of a Sequential, or as the start of a functional model."""
    if kwargs:
        raise UnsupportedKerasFeature(
            f"Input: arguments {sorted(kwargs)} are not supported by cnnlab"
        )
    layer = InputLayer(
        shape=shape,
        batch_shape=batch_shape,
        name=name,
        dtype=dtype if dtype in (None, "float32", "float64") else None,
    )
    tensor = KerasTensor(layer.shape, layer)
    layer.output = tensor
    return tensor


def symbolic_inputs(inputs: Any) -> list[KerasTensor] | None:
    """The KerasTensors among a call's inputs (a tensor or a list), or None for arrays."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    symbolic = [isinstance(item, KerasTensor) for item in items]
    if not any(symbolic):
        return None
    if not all(symbolic):
        raise ValueError(
            "a layer cannot mix symbolic tensors (from keras.Input) and arrays in one call"
        )
    return items


def call_symbolic(layer: Layer, tensors: list[KerasTensor], as_list: bool) -> KerasTensor:
    """Record the call of a layer on symbolic tensors; the output tensor knows its shape."""
    if getattr(layer, "inbound", None) is not None and layer.inbound != tensors:
        raise UnsupportedKerasFeature(
            f"{layer.describe()}: calling one layer on two different inputs (shared layers) is "
            "not supported by "
            "cnnlab; create a second layer"
        )
    if layer.multi_input != as_list:
        what = "a list of tensors" if layer.multi_input else "one tensor"
        raise ValueError(f"{layer.describe()}: expects {what}, received {len(tensors)}")
    shapes = [t.shape_without_batch for t in tensors]
    output_shape = layer.compute_output_shape(shapes if layer.multi_input else shapes[0])
    layer.inbound = tensors
    output = KerasTensor(output_shape, layer)
    if not isinstance(layer, Model):  # a model's own .output is its output inside, not this node's
        layer.output = output
    return output


def call_layer(layer: Layer, inputs: Any, training: bool = False) -> Any:
    """``layer(inputs)``: a symbolic call on KerasTensors, else the output computed now."""
    tensors = symbolic_inputs(inputs)
    if tensors is not None:
        return call_symbolic(layer, tensors, isinstance(inputs, (list, tuple)))
    if layer.multi_input:
        xs = [np.asarray(x, dtype=floatx()) for x in inputs]
        shape = [x.shape[1:] for x in xs]
    else:
        xs = np.asarray(inputs, dtype=floatx())
        shape = xs.shape[1:]
    if not layer.built:
        layer.build(shape, np.random.default_rng())
    return eager(layer.forward(xs, training=bool(training)).copy())


def call_model(model: Model, inputs: Any, training: bool = False) -> Any:
    """``model(inputs)``: a node of a functional model on KerasTensors, else its outputs now."""
    tensors = symbolic_inputs(inputs)
    if tensors is not None:
        return call_symbolic(model, tensors, model.multi_input)
    x = model.standardize_x(
        list(inputs) if isinstance(inputs, (list, tuple)) else inputs, "__call__"
    )
    out = model.forward(x, training=bool(training))
    return eager([part.copy() for part in out] if isinstance(out, list) else out.copy())


def topological_order(outputs: list[KerasTensor]) -> list[Layer]:
    """Every layer the outputs depend on, each after all the layers it reads (depth-first)."""
    order: list[Layer] = []
    visiting: set[int] = set()
    done: set[int] = set()

    def visit(layer: Layer) -> None:
        if id(layer) in done:
            return
        if id(layer) in visiting:
            raise ValueError(f"the layer graph has a cycle through {layer.describe()}")
        visiting.add(id(layer))
        for tensor in getattr(layer, "inbound", None) or []:
            visit(tensor.keras_history_layer)
        visiting.discard(id(layer))
        done.add(id(layer))
        order.append(layer)

    for tensor in outputs:
        visit(tensor.keras_history_layer)
    return order


def as_tensor_list(value: Any, what: str) -> list[KerasTensor]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, dict):
        raise UnsupportedKerasFeature(
            f"Model: {what} given as a dict is not supported by cnnlab; pass a list"
        )
    if not items or not all(isinstance(item, KerasTensor) for item in items):
        raise ValueError(
            f"Model: {what} must be symbolic tensors from keras.Input and layer calls, received "
            f"{value!r}"
        )
    return items


@register_model
class Functional(Model):
    """A model whose layers form a directed acyclic graph: ``Model(inputs, outputs)``
    (keras.Model with the functional API). Several inputs are fed as a list of arrays;
    several outputs are returned as a list (training needs one output)."""

    default_name = "functional"

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UnsupportedKerasFeature(
                f"Model: arguments {sorted(kwargs)} are not supported by cnnlab"
            )
        super().__init__(name=name, seed=seed, trainable=trainable)
        self.inputs = as_tensor_list(inputs, "inputs")
        self.outputs = as_tensor_list(outputs, "outputs")
        self.single_output = not isinstance(outputs, (list, tuple))
        order = topological_order(self.outputs)
        self.input_layers = [tensor.keras_history_layer for tensor in self.inputs]
        self.check_inputs(order)
        self._layers = [layer for layer in order if not isinstance(layer, InputLayer)]
        self.check_unique_names()
        self.multi_input = len(self.inputs) > 1
        self.build_layers()

    def check_inputs(self, order: list[Layer]) -> None:
        if not all(isinstance(layer, InputLayer) for layer in self.input_layers):
            raise ValueError("Model: every input must come from keras.Input(...)")
        missing = [
            layer.name
            for layer in order
            if isinstance(layer, InputLayer) and layer not in self.input_layers
        ]
        if missing:
            raise ValueError(
                f"Model: the outputs depend on the inputs {missing}, which are not among the "
                "model's "
                f"inputs {[layer.name for layer in self.input_layers]} (the graph is disconnected)"
            )

    def check_unique_names(self) -> None:
        names = [layer.name for layer in self.input_layers + self._layers]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"{self.name}: all layer names must be unique; {twice} appear more than once"
            )

    def build_layers(self) -> None:
        """Create every layer's weights with the model's generator, in graph order."""
        for layer in self._layers:
            shapes = [tensor.shape_without_batch for tensor in layer.inbound]
            if not layer.built:
                layer.build(shapes if layer.multi_input else shapes[0], self.init_rng)
        self.update_gradient_flags()

    # ------------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        """Every layer in graph order, the input layers first (as Keras lists them)."""
        return [*self.input_layers, *self._layers]

    built = True

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [layer.shape for layer in self.input_layers]

    @property
    def input_shape(self) -> tuple[int, ...] | list[tuple[int, ...]]:
        return self.input_shapes if self.multi_input else self.input_shapes[0]

    @property
    def output_shape(self) -> tuple[int, ...] | list[tuple[int, ...]]:
        shapes = [tensor.shape_without_batch for tensor in self.outputs]
        return shapes[0] if self.single_output else shapes

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def output_layer(self) -> Layer:
        return self.outputs[0].keras_history_layer

    @property
    def input(self) -> KerasTensor | list[KerasTensor]:
        return self.inputs if self.multi_input else self.inputs[0]

    @property
    def output(self) -> KerasTensor | list[KerasTensor]:
        return self.outputs[0] if self.single_output else self.outputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        expected = self.input_shape
        given = [tuple(s) for s in input_shape] if self.multi_input else tuple(input_shape)
        if given != expected:
            raise ValueError(f"{self.name}: expects input {expected}, received {given}")
        return self.output_shape

    def build(self, input_shape: Any, rng: np.random.Generator | None = None) -> None:
        self.compute_output_shape(input_shape)  # built at construction; only check the shape

    def compile(self, *args: Any, **kwargs: Any) -> None:
        if not self.single_output:
            raise UnsupportedKerasFeature(
                f"{self.name}: training a model with several outputs is not supported by "
                "cnnlab (predict works); make a model with one output to train"
            )
        super().compile(*args, **kwargs)

    def update_gradient_flags(self) -> None:
        """A layer needs its input gradient when some layer it reads from, directly or not,
        has weights to train (or a model input needs one, when this model is nested)."""
        upstream = {id(layer): self.needs_input_grad for layer in self.input_layers}
        for layer in self._layers:
            producers = [tensor.keras_history_layer for tensor in layer.inbound]
            layer.needs_input_grad = any(upstream[id(p)] for p in producers)
            upstream[id(layer)] = layer.needs_input_grad or self.has_trainable_weights(layer)

    # -------------------------------------------------------------- forward/backward
    def forward(self, x: Any, training: bool = False, trace: list | None = None) -> Any:
        """x: (N, *input_shape), or a list for several inputs -> the output(s)."""
        values = dict(zip(map(id, self.input_layers), x if self.multi_input else [x]))
        for layer in self._layers:
            inputs = [values[id(tensor.keras_history_layer)] for tensor in layer.inbound]
            values[id(layer)] = layer.forward(
                inputs if layer.multi_input else inputs[0], training=training
            )
            if trace is not None:
                trace.append((layer.name, values[id(layer)]))
        outputs = [values[id(tensor.keras_history_layer)] for tensor in self.outputs]
        return outputs[0] if self.single_output else outputs

    def backward_from(self, grad: np.ndarray, fused: bool) -> Any:
        """grad: d(loss)/d(output) (or of the output layer's pre-activation when fused) ->
        d(loss)/d(input) when this model needs it, else None. Fills every layer's grads."""
        grads = {id(self.output_layer): grad}
        for layer in reversed(self._layers):
            if id(layer) not in grads or not (
                layer.needs_input_grad or self.has_trainable_weights(layer)
            ):
                continue
            dy = grads.pop(id(layer))
            dx = (
                layer.backward_linear(dy)
                if fused and layer is self.output_layer
                else layer.backward(dy)
            )
            if layer.needs_input_grad:
                self.send_gradients(layer, dx if layer.multi_input else [dx], grads)
        if not self.needs_input_grad:
            return None
        dxs = [grads.get(id(layer)) for layer in self.input_layers]
        return dxs if self.multi_input else dxs[0]

    @staticmethod
    def send_gradients(layer: Layer, dxs: list[np.ndarray], grads: dict[int, np.ndarray]) -> None:
        """Hand each input's gradient to the layer that produced it; a producer read by
        several layers receives the sum (a new array, so no layer's own gradient is changed)."""
        for tensor, dx in zip(layer.inbound, dxs):
            producer = id(tensor.keras_history_layer)
            grads[producer] = grads[producer] + dx if producer in grads else dx

    # ----------------------------------------------------------------- description
    def summary_rows_connected(self) -> list[tuple[str, ...]]:
        """Summary rows; with a fourth column "Connected to" when the graph branches."""
        line = (
            all(len(getattr(layer, "inbound", [])) == 1 for layer in self._layers)
            and len(self.inputs) == 1
        )
        consumers = [
            tensor.keras_history_layer for layer in self._layers for tensor in layer.inbound
        ]
        line = line and len(consumers) == len({id(layer) for layer in consumers})
        rows = []
        for layer in self.layers:
            shape = (
                str((None, *layer.shape))
                if isinstance(layer, InputLayer)
                else str((None, *layer.output_shape))
            )
            row = (f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}")
            if not line:
                sources = [
                    f"{t.keras_history_layer.name}[0][0]"
                    for t in getattr(layer, "inbound", None) or []
                ]
                row = (*row, ", ".join(sources) or "-")
            rows.append(row)
        return rows

    def get_config(self) -> dict[str, Any]:
        """{"name", "layers": [{"class_name", "config", "name",
        "inbound_nodes": [[layer, 0, 0], ...]}], "input_layers": [[name, 0, 0], ...],
        "output_layers": [[name, 0, 0], ...]} (JSON-able)."""
        specs = []
        for layer in self.layers:
            inbound = [
                [t.keras_history_layer.name, 0, 0] for t in getattr(layer, "inbound", None) or []
            ]
            specs.append(
                {
                    "class_name": type(layer).__name__,
                    "config": layer.get_config(),
                    "name": layer.name,
                    "inbound_nodes": inbound,
                }
            )
        return {
            "name": self.name,
            "layers": specs,
            "input_layers": [[layer.name, 0, 0] for layer in self.input_layers],
            "output_layers": [[t.keras_history_layer.name, 0, 0] for t in self.outputs],
            "single_output": self.single_output,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = None) -> Functional:
        """Re-create the layers and replay their calls in the recorded order."""
        tensors: dict[str, KerasTensor] = {}
        for spec in config["layers"]:
            layer = deserialize(spec)
            if isinstance(layer, InputLayer):
                tensors[layer.name] = KerasTensor(layer.shape, layer)
                continue
            inbound = [tensors[name] for name, *_ in spec["inbound_nodes"]]
            tensors[layer.name] = layer(inbound if layer.multi_input else inbound[0])
        inputs = [tensors[name] for name, *_ in config["input_layers"]]
        outputs = [tensors[name] for name, *_ in config["output_layers"]]
        single = config.get("single_output", len(outputs) == 1)
        return cls(
            inputs if len(inputs) > 1 else inputs[0],
            outputs[0] if single else outputs,
            name=config.get("name"),
            seed=seed,
        )
