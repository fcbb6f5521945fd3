"""The torch twin of a whole engine model, and the weights copied both ways.

``TorchSequential`` takes and returns the engine's layout (NHWC images); its children are the
layer twins under the cnnlab layer names. Weights keep torch's layout; ``copy_weights_to_torch``
and ``copy_weights_from_torch`` transpose from and to the engine's, exactly, moving statistics
included.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.engine.config import floatx
from cnnlab.engine.sequential import Sequential
from cnnlab.reference.common import check_supported, engine_model_from_config
from cnnlab.reference.torch.layers import TORCH_LAYERS, TorchLayer
from cnnlab.reference.torch.layout import (
    TORCH_DTYPES,
    channels_first,
    channels_last,
    engine_layout,
    torch_layout,
)

Config = dict[str, Any] | list[dict[str, Any]]


class TorchSequential(nn.Sequential):
    """The PyTorch twin of a cnnlab Sequential; children carry the cnnlab layer names
    (``torch_model.conv2d.conv.weight``). x: (N, *input_shape), NHWC for images ->
    (N, *output_shape) in the engine's layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channels_last(super().forward(channels_first(x)))

    def trace(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's output and the last layer's pre-activation z, all in the engine's
        layout."""
        *body, last = list(self)
        h, outputs = channels_first(x), []
        for layer in body:
            h = layer(h)
            outputs.append(channels_last(h))
        z = last.pre_activation(h)
        outputs.append(channels_last(last.activate(z)))
        return outputs, channels_last(z)

    @property
    def needs_native_convolution(self) -> bool:
        """True when a convolution's stride exceeds its kernel (see ``strides_skip_pixels``):
        then backward passes must run with oneDNN off too."""
        return any(getattr(layer, "avoid_onednn", False) for layer in self)

    def forward_with_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, y_pred): the last layer's pre-activation and the model's output."""
        outputs, z = self.trace(x)
        return z, outputs[-1]

    @property
    def last_activation(self) -> str:
        return list(self)[-1].activation


def build_torch_twin(model: Sequential, dtype: torch.dtype | None = None) -> TorchSequential:
    """The torch twin of a built engine model, with its weights copied
    (dtype: the engine's floatx)."""
    check_supported(model.get_config(), "PyTorch", TORCH_LAYERS)
    dtype = dtype or TORCH_DTYPES[floatx()]
    modules = OrderedDict(
        (layer.name, TORCH_LAYERS[type(layer).__name__](layer, dtype)) for layer in model.layers
    )
    torch_model = TorchSequential(modules)
    copy_weights_to_torch(model, torch_model)
    return torch_model


def build_torch_model(
    config: Config, seed: int | None = None, dtype: torch.dtype | None = None
) -> TorchSequential:
    """The torch twin of ``Sequential.get_config()`` (or the bare list of layers).

    Its weights are those ``Sequential.from_config(config, seed=seed)`` initialises
    (glorot_uniform kernels, zero biases), so one seed gives the same start in both engines.
    Raises ValueError for layer classes without a twin.
    """
    return build_torch_twin(engine_model_from_config(config, "PyTorch", seed), dtype)


def torch_param(torch_model: TorchSequential, layer_name: str, key: str) -> nn.Parameter:
    """The torch weight behind the engine's "layer_name/key"."""
    module = dict(torch_model.named_children()).get(layer_name)
    params = (
        {**module.keras_params(), **module.keras_state()} if isinstance(module, TorchLayer) else {}
    )
    if key not in params:
        raise ValueError(
            f"the torch model has no weight {layer_name}/{key}; is it the twin of this model?"
        )
    return params[key]


def copy_weights_to_torch(model: Sequential, torch_model: TorchSequential) -> None:
    """Engine -> torch, every weight (moving statistics included), transposed to torch's layout
    (exact)."""
    with torch.no_grad():
        for layer in model.layers:
            for key, value in layer.weights_dict().items():
                target = torch_param(torch_model, layer.name, key)
                source = torch.tensor(np.ascontiguousarray(torch_layout(value)))
                if source.shape != target.shape:
                    raise ValueError(
                        f"{layer.describe()}: weight {key!r} of shape {value.shape} does not fit "
                        f"the torch weight of shape {tuple(target.shape)}"
                    )
                target.copy_(source)


def copy_weights_from_torch(torch_model: TorchSequential, model: Sequential) -> None:
    """Torch -> engine, every weight (moving statistics included), transposed to the engine's layout
    (exact)."""
    for layer in model.layers:
        for key, value in layer.weights_dict().items():
            source = engine_layout(torch_param(torch_model, layer.name, key))
            if source.shape != value.shape:
                raise ValueError(
                    f"{layer.describe()}: weight {key!r} has shape {value.shape}, "
                    f"the torch weight gives {source.shape}"
                )
            value[...] = source
