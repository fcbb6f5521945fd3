"""The torch twin of every engine layer (``TORCH_LAYERS``, keyed by the engine's class names).

Each twin takes the built engine layer (for its arguments and input shape) and works on NCHW
images or (N, features). Keras's conventions, reproduced exactly:
- "same" padding pads total // 2 before, the odd pixel after (``layout.keras_pads``);
- max pooling pads with -inf, so a padded pixel never wins;
- average pooling divides by the number of real pixels in each window (TensorFlow's rule);
- Flatten flattens channels-last (H, W, C), so Dense kernels are interchangeable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.engine import layers as engine_layers
from cnnlab.reference.torch.layout import channels_first, channels_last, keras_pads, pad
from cnnlab.reference.torch.onednn import onednn, strides_skip_pixels


# ---------------------------------------------------------------------- activations
def softmax_over_channels(z: torch.Tensor) -> torch.Tensor:
    """The engine's softmax is over its last axis: the channels (dim 1 of NCHW images)."""
    return torch.softmax(z, dim=1 if z.dim() == 4 else -1)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": softmax_over_channels,
}


# --------------------------------------------------------------------------- layers
class TorchLayer(nn.Module):
    """One engine layer: ``pre_activation`` then the activation; tensors NCHW or (N, features)."""

    activation = "linear"

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](z)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.activate(self.pre_activation(h))

    def keras_params(self) -> dict[str, nn.Parameter]:
        """The weights under their Keras names ("kernel", "bias"), in torch's layout."""
        return {}

    def keras_state(self) -> dict[str, torch.Tensor]:
        """The non-trainable weights (buffers) under their Keras names ("moving_mean", ...)."""
        return {}


class TorchConv2D(TorchLayer):
    """keras.layers.Conv2D: explicit Keras padding, then nn.Conv2d without padding."""

    def __init__(self, layer: engine_layers.Conv2D, dtype: torch.dtype) -> None:
        super().__init__()
        self.activation = layer.activation.name
        self.pads = keras_pads(layer.input_shape, layer.kernel_size, layer.strides, layer.padding)
        self.conv = nn.utils.skip_init(
            nn.Conv2d,
            layer.input_shape[2],
            layer.filters,
            layer.kernel_size,
            stride=layer.strides,
            bias=layer.use_bias,
            dtype=dtype,
        )
        self.avoid_onednn = strides_skip_pixels(layer.kernel_size, layer.strides)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        # h: (N, C_in, H, W) -> (N, filters, Ho, Wo)
        with onednn(enabled=not self.avoid_onednn):
            return self.conv(pad(h, self.pads))

    def keras_params(self) -> dict[str, nn.Parameter]:
        return without_none({"kernel": self.conv.weight, "bias": self.conv.bias})


class TorchDense(TorchLayer):
    """keras.layers.Dense as nn.Linear; its weight is the transposed Keras kernel."""

    def __init__(self, layer: engine_layers.Dense, dtype: torch.dtype) -> None:
        super().__init__()
        self.activation = layer.activation.name
        self.linear = nn.utils.skip_init(
            nn.Linear, layer.input_shape[-1], layer.units, bias=layer.use_bias, dtype=dtype
        )

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 4:  # an image: the engine's last axis, the channels, is dim 1 here
            return channels_first(self.linear(channels_last(h)))
        return self.linear(h)  # (N, ..., in) -> (N, ..., units)

    def keras_params(self) -> dict[str, nn.Parameter]:
        return without_none({"kernel": self.linear.weight, "bias": self.linear.bias})


class TorchMaxPooling2D(TorchLayer):
    """keras.layers.MaxPooling2D: padded with -inf, so padding never wins."""

    def __init__(self, layer: engine_layers.MaxPooling2D, dtype: torch.dtype) -> None:
        super().__init__()
        self.pool, self.strides = layer.pool_size, layer.strides
        self.pads = keras_pads(layer.input_shape, layer.pool_size, layer.strides, layer.padding)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        # h: (N, C, H, W) -> (N, C, Ho, Wo)
        return F.max_pool2d(pad(h, self.pads, value=-math.inf), self.pool, stride=self.strides)


class TorchAveragePooling2D(TorchLayer):
    """keras.layers.AveragePooling2D: window sums over the count of real (unpadded) pixels."""

    def __init__(self, layer: engine_layers.AveragePooling2D, dtype: torch.dtype) -> None:
        super().__init__()
        self.pool, self.strides = layer.pool_size, layer.strides
        self.pads = keras_pads(layer.input_shape, layer.pool_size, layer.strides, layer.padding)
        ones = torch.ones(1, 1, *layer.input_shape[:2], dtype=dtype)
        self.register_buffer("counts", self.window_sums(ones), persistent=False)  # (1, 1, Ho, Wo)

    def window_sums(self, h: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(pad(h, self.pads), self.pool, stride=self.strides, divisor_override=1)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        # h: (N, C, H, W) -> (N, C, Ho, Wo)
        return self.window_sums(h) / self.counts


class TorchFlatten(TorchLayer):
    """keras.layers.Flatten: (N, C, H, W) -> (N, H*W*C) in channels-last order."""

    def __init__(self, layer: engine_layers.Flatten, dtype: torch.dtype) -> None:
        super().__init__()

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return channels_last(h).reshape(len(h), -1)


class TorchDropout(TorchLayer):
    """keras.layers.Dropout as nn.Dropout (inverted dropout; the identity in eval mode)."""

    def __init__(self, layer: engine_layers.Dropout, dtype: torch.dtype) -> None:
        super().__init__()
        self.dropout = nn.Dropout(layer.rate)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return self.dropout(h)


class TorchActivation(TorchLayer):
    """keras.layers.Activation: the activation alone."""

    def __init__(self, layer: engine_layers.Activation, dtype: torch.dtype) -> None:
        super().__init__()
        self.activation = layer.activation.name


def torch_axis(axis: int, rank: int) -> int:
    """An engine axis (channels last, batch axis 0) -> the same axis of the twin's tensor
    (NCHW at rank 4)."""
    axis %= rank
    return (0, 2, 3, 1)[axis] if rank == 4 else axis


def along(v: torch.Tensor, axis: int, rank: int) -> torch.Tensor:
    """v: (C,) -> broadcastable along ``axis`` of a rank-``rank`` tensor."""
    shape = [1] * rank
    shape[axis] = -1
    return v.reshape(shape)


class TorchBatchNormalization(TorchLayer):
    """keras.layers.BatchNormalization by hand: in train mode the batch's mean and biased variance,
    and Keras's update moving = moving * momentum + batch * (1 - momentum); in eval mode (or for
    a non-trainable layer) the moving statistics. nn.BatchNorm is not used: its momentum is
    1 - Keras's and its running variance is the unbiased one."""

    def __init__(self, layer: engine_layers.BatchNormalization, dtype: torch.dtype) -> None:
        super().__init__()
        channels = layer.state["moving_mean"].shape
        self.gamma = nn.Parameter(torch.ones(channels, dtype=dtype)) if layer.scale else None
        self.beta = nn.Parameter(torch.zeros(channels, dtype=dtype)) if layer.center else None
        self.register_buffer("moving_mean", torch.zeros(channels, dtype=dtype))
        self.register_buffer("moving_variance", torch.ones(channels, dtype=dtype))
        self.momentum, self.epsilon, self.trainable = layer.momentum, layer.epsilon, layer.trainable
        self.rank = len(layer.input_shape) + 1
        self.axis = torch_axis(layer.channel_axis, self.rank)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        # h: (N, C, H, W) or (N, ..., C) -> same shape
        if self.training and self.trainable:
            dims = [d for d in range(self.rank) if d != self.axis]
            mean, variance = h.mean(dim=dims), h.var(dim=dims, correction=0)
            with torch.no_grad():
                self.moving_mean.copy_(
                    self.moving_mean * self.momentum + mean * (1 - self.momentum)
                )
                self.moving_variance.copy_(
                    self.moving_variance * self.momentum + variance * (1 - self.momentum)
                )
        else:
            mean, variance = self.moving_mean, self.moving_variance
        out = (h - along(mean, self.axis, self.rank)) * along(
            torch.rsqrt(variance + self.epsilon), self.axis, self.rank
        )
        if self.gamma is not None:
            out = out * along(self.gamma, self.axis, self.rank)
        return out if self.beta is None else out + along(self.beta, self.axis, self.rank)

    def keras_params(self) -> dict[str, nn.Parameter]:
        return without_none({"gamma": self.gamma, "beta": self.beta})

    def keras_state(self) -> dict[str, torch.Tensor]:
        return {"moving_mean": self.moving_mean, "moving_variance": self.moving_variance}


class TorchGlobalAveragePooling2D(TorchLayer):
    """keras.layers.GlobalAveragePooling2D: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with
    keepdims."""

    def __init__(self, layer: engine_layers.GlobalAveragePooling2D, dtype: torch.dtype) -> None:
        super().__init__()
        self.keepdims = layer.keepdims

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=(2, 3), keepdim=self.keepdims)


class TorchGlobalMaxPooling2D(TorchGlobalAveragePooling2D):
    """keras.layers.GlobalMaxPooling2D as torch.amax
    (a tie shares the gradient, as Keras on torch)."""

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return h.amax(dim=(2, 3), keepdim=self.keepdims)


class TorchZeroPadding2D(TorchLayer):
    """keras.layers.ZeroPadding2D as F.pad."""

    def __init__(self, layer: engine_layers.ZeroPadding2D, dtype: torch.dtype) -> None:
        super().__init__()
        (top, bottom), (left, right) = layer.padding
        self.pads = (left, right, top, bottom)

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return pad(h, self.pads)  # (N, C, H, W) -> (N, C, top + H + bottom, left + W + right)


class TorchReshape(TorchLayer):
    """keras.layers.Reshape: in the engine's (channels-last) order, back to NCHW for images."""

    def __init__(self, layer: engine_layers.Reshape, dtype: torch.dtype) -> None:
        super().__init__()
        self.output_shape = layer.output_shape

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return channels_first(channels_last(h).reshape(len(h), *self.output_shape))


class TorchRescaling(TorchLayer):
    """keras.layers.Rescaling: x * scale + offset."""

    def __init__(self, layer: engine_layers.Rescaling, dtype: torch.dtype) -> None:
        super().__init__()
        self.scale, self.offset = layer.scale, layer.offset

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.scale + self.offset


class TorchSoftmax(TorchLayer):
    """keras.layers.Softmax; along the last (channel) axis it is the "softmax" activation itself,
    so a loss can take its logits as for a Dense layer's softmax."""

    def __init__(self, layer: engine_layers.Softmax, dtype: torch.dtype) -> None:
        super().__init__()
        self.activation = layer.activation.name  # "softmax" along the last axis, else "linear"
        rank = len(layer.input_shape) + 1
        self.dims = [torch_axis(axis, rank) for axis in layer.axes]

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "softmax":
            return h
        return torch.exp(h - torch.logsumexp(h, dim=self.dims, keepdim=True))


class TorchReLU(TorchLayer):
    """keras.layers.ReLU and LeakyReLU: min(x, max_value) above the threshold, else
    negative_slope * (x - threshold)."""

    def __init__(self, layer: engine_layers.ReLU, dtype: torch.dtype) -> None:
        super().__init__()
        self.negative_slope, self.max_value, self.threshold = layer.options()

    def pre_activation(self, h: torch.Tensor) -> torch.Tensor:
        above = h if self.max_value is None else torch.clamp(h, max=self.max_value)
        return torch.where(h > self.threshold, above, self.negative_slope * (h - self.threshold))


TORCH_LAYERS: dict[str, type[TorchLayer]] = {  # keyed by the engine's registered class names
    "Conv2D": TorchConv2D,
    "Dense": TorchDense,
    "MaxPooling2D": TorchMaxPooling2D,
    "AveragePooling2D": TorchAveragePooling2D,
    "Flatten": TorchFlatten,
    "Dropout": TorchDropout,
    "Activation": TorchActivation,
    "BatchNormalization": TorchBatchNormalization,
    "GlobalAveragePooling2D": TorchGlobalAveragePooling2D,
    "GlobalMaxPooling2D": TorchGlobalMaxPooling2D,
    "ZeroPadding2D": TorchZeroPadding2D,
    "Reshape": TorchReshape,
    "Rescaling": TorchRescaling,
    "Softmax": TorchSoftmax,
    "ReLU": TorchReLU,
    "LeakyReLU": TorchReLU,
}


def without_none(params: dict[str, nn.Parameter | None]) -> dict[str, nn.Parameter]:
    return {key: value for key, value in params.items() if value is not None}
