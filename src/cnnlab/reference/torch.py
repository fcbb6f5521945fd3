"""The same network in PyTorch, built from a cnnlab model config: the engine's framework twin.

Layout. The torch model takes and returns the engine's layout: images NHWC in, (N, units)
or NHWC out. Inside, images are NCHW, as PyTorch's kernels want them. Weights keep torch's
layout, conv (out, in, kh, kw) and Linear (out, in); ``copy_weights_to_torch`` and
``copy_weights_from_torch`` transpose from and to the engine's (kh, kw, in, out) and (in, out).

Keras's conventions, reproduced exactly:
- "same" padding gives ceil(H / stride) outputs and pads total // 2 before, the odd pixel
  after (explicit ``F.pad``; torch's own ``padding=`` is symmetric);
- max pooling pads with -inf, so a padded pixel never wins;
- average pooling divides by the number of real pixels in each window (TensorFlow's rule);
- Flatten flattens channels-last (H, W, C), so Dense kernels are interchangeable.

Losses. The reported value is Keras's definition: cross-entropy on probabilities clipped to
[1e-7, 1 - 1e-7], averaged over every prediction. When the last activation is the loss's own
(softmax for categorical, sigmoid for binary), the gradient is the exact, unclipped one
computed from the logits (``log_softmax`` / ``binary_cross_entropy_with_logits``):
dL/dz = (p - y) / count, which is also the engine's fused gradient. The clipped and unclipped
values differ only where a probability is clipped (below 1e-7, or within 1e-7 of 1). With any
other last activation the loss is the clipped formula itself, with no gradient where the clip
holds p fixed, as in the engine.

Optimizers. ``KerasAdam``, ``KerasRMSprop`` and ``KerasSGD`` apply the engine's (Keras's)
update rules operation for operation; torch.optim's Adam and RMSprop put epsilon elsewhere.

This is the only cnnlab module that imports torch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.engine import layers as engine_layers
from cnnlab.engine import losses as engine_losses
from cnnlab.engine import optimizers as engine_optimizers
from cnnlab.engine.config import floatx
from cnnlab.engine.model import Totals
from cnnlab.engine.sequential import Sequential
from cnnlab.reference.common import check_supported, engine_model_from_config, fit_inputs

__all__ = [
    "KerasAdadelta",
    "KerasAdagrad",
    "KerasAdam",
    "KerasAdamW",
    "KerasLoss",
    "KerasNadam",
    "KerasRMSprop",
    "KerasSGD",
    "TorchSequential",
    "TorchTrainer",
    "build_torch_model",
    "build_torch_twin",
    "copy_weights_from_torch",
    "copy_weights_to_torch",
    "format_parity",
    "make_torch_optimizer",
    "parity_report",
]

Config = dict[str, Any] | list[dict[str, Any]]
Pads = tuple[int, int, int, int]  # (left, right, top, bottom), the order of F.pad
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------- layout
def channels_first(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W); other ranks unchanged."""
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W, C); other ranks unchanged."""
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras's "same": ceil(size / stride) outputs; (before, after) with the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def keras_pads(
    input_shape: tuple[int, ...], window: tuple[int, int], strides: tuple[int, int], padding: str
) -> Pads:
    """(left, right, top, bottom) padding of an (H, W, C) input, as F.pad takes it."""
    if padding != "same":
        return (0, 0, 0, 0)
    top, bottom = same_padding(input_shape[0], window[0], strides[0])
    left, right = same_padding(input_shape[1], window[1], strides[1])
    return (left, right, top, bottom)


def pad(h: torch.Tensor, pads: Pads, value: float = 0.0) -> torch.Tensor:
    """h: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    return F.pad(h, pads, value=value) if any(pads) else h


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


@contextlib.contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    """Switch PyTorch's oneDNN (mkldnn) kernels on or off for the block."""
    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


def strides_skip_pixels(kernel_size: tuple[int, int], strides: tuple[int, int]) -> bool:
    """True when a stride is larger than the kernel. PyTorch 2.13's oneDNN convolution
    corrupts the heap in the backward pass of such a layer when torch runs on one thread
    (e.g. a 1x1 kernel with stride 3); its native convolution is used for them instead."""
    return any(s > k for k, s in zip(kernel_size, strides))


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


# ---------------------------------------------------------------------------- model
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


# -------------------------------------------------------------------------- weights
def torch_layout(value: np.ndarray) -> np.ndarray:
    """Engine -> torch: conv kernel (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out) ->
    (out, in)."""
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    return value.T if value.ndim == 2 else value


def engine_layout(value: torch.Tensor) -> np.ndarray:
    """Torch -> engine: the inverse of ``torch_layout``."""
    value = value.detach().cpu()
    if value.dim() == 4:
        value = value.permute(2, 3, 1, 0)
    elif value.dim() == 2:
        value = value.T
    return value.numpy()


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


# ----------------------------------------------------------------------- optimizers
class KerasOptimizer(torch.optim.Optimizer):
    """Base: ``step`` calls ``update(param, grad, state, group)`` for every parameter with a
    gradient, after what Keras does around every rule (as the engine's Optimizer.apply): the step's
    rate lr / (1 + decay * iterations) (Keras 2's ``decay``), ``clipnorm``/``clipvalue``, and
    decoupled ``weight_decay`` p -= p * wd * lr. Those arguments sit in the group only when
    given."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            iterations = group.get("iterations", 0)
            step_group = {**group, "lr": group["lr"] / (1 + group.get("decay", 0.0) * iterations)}
            for param in group["params"]:
                if param.grad is not None:
                    if group.get("weight_decay"):
                        param -= param * group["weight_decay"] * step_group["lr"]
                    self.update(
                        param, clip_gradient(param.grad, group), self.state[param], step_group
                    )
            group["iterations"] = iterations + 1
        return loss

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        raise NotImplementedError


def clip_gradient(grad: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
    """Keras's clipnorm (g * c / max(||g||, c), per weight) or clipvalue (clip(g, -c, c))."""
    if group.get("clipnorm") is not None:
        return grad * group["clipnorm"] / max(float(grad.square().sum().sqrt()), group["clipnorm"])
    if group.get("clipvalue") is not None:
        return grad.clamp(-group["clipvalue"], group["clipvalue"])
    return grad


def zero_slots(
    state: dict[str, Any], param: torch.Tensor, names: Iterable[str], initial_value: float = 0.0
) -> None:
    """Create the per-parameter slots on first use, as zeros (Adagrad: its initial value) as the
    engine does."""
    if not state:
        state["step"] = 0
        state.update({name: torch.full_like(param, initial_value) for name in names})
    state["step"] += 1


class KerasSGD(KerasOptimizer):
    """keras.optimizers.SGD: v = momentum v - lr g;  p += v  (nesterov: p += momentum v - lr g)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **common: float,
    ) -> None:
        super().__init__(
            params, {"lr": learning_rate, "momentum": momentum, "nesterov": nesterov, **common}
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, momentum = group["lr"], group["momentum"]
        if momentum == 0:
            param -= lr * grad
            return
        zero_slots(state, param, ["velocity"])
        velocity = state["velocity"]
        velocity *= momentum
        velocity -= lr * grad
        param += momentum * velocity - lr * grad if group["nesterov"] else velocity


class KerasAdam(KerasOptimizer):
    """keras.optimizers.Adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)  (amsgrad: max(v_hat, v) for v).

    torch.optim.Adam adds eps to sqrt(v / (1 - b2^t)) instead: the same for eps -> 0.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(
            params,
            {"lr": learning_rate, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, **common},
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(
            state,
            param,
            ["momentum", "velocity", "velocity_hat"]
            if group.get("amsgrad")
            else ["momentum", "velocity"],
        )
        beta_1, beta_2, t = group["beta_1"], group["beta_2"], state["step"]
        step_size = group["lr"] * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m, v = state["momentum"], state["velocity"]
        m += (1 - beta_1) * (grad - m)
        v += (1 - beta_2) * (grad * grad - v)
        if group.get("amsgrad"):
            v = torch.maximum(state["velocity_hat"], v, out=state["velocity_hat"])
        param -= step_size * m / (v.sqrt() + group["epsilon"])


class KerasAdamW(KerasAdam):
    """keras.optimizers.AdamW: Adam after p -= p * weight_decay * lr
    (default weight_decay 0.004)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        **arguments: float,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay=weight_decay, **arguments)


class KerasNadam(KerasAdam):
    """keras.optimizers.Nadam (Adam's arguments and defaults, its own rule): momentum schedule
    u_t = b1 (1 - 0.5 * 0.96^t), U_t = u_1 ... u_t;
    m_hat = u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t);
    p -= lr m_hat / (sqrt(v / (1 - b2^t)) + eps)."""

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["momentum", "velocity"])
        beta_1, beta_2, t = group["beta_1"], group["beta_2"], state["step"]
        u_t, u_next = beta_1 * (1 - 0.5 * 0.96**t), beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = state["u_product"] = state.get("u_product", 1.0) * u_t
        m, v = state["momentum"], state["velocity"]
        m += (1 - beta_1) * (grad - m)
        v += (1 - beta_2) * (grad * grad - v)
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * grad / (1 - u_product)
        param -= group["lr"] * m_hat / ((v / (1 - beta_2**t)).sqrt() + group["epsilon"])


class KerasAdagrad(KerasOptimizer):
    """keras.optimizers.Adagrad: a += g^2 (a starts at initial_accumulator_value);  p -= lr g /
    sqrt(a + eps)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": learning_rate,
                "initial_accumulator_value": initial_accumulator_value,
                "epsilon": epsilon,
                **common,
            },
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["accumulator"], group["initial_accumulator_value"])
        a = state["accumulator"]
        a += grad * grad
        param -= group["lr"] * grad / (a + group["epsilon"]).sqrt()


class KerasAdadelta(KerasOptimizer):
    """keras.optimizers.Adadelta: a = rho a + (1 - rho) g^2;  d = -sqrt(s + eps) / sqrt(a + eps) g;
    s = rho s + (1 - rho) d^2;  p += lr d."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(params, {"lr": learning_rate, "rho": rho, "epsilon": epsilon, **common})

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["accumulated_grad", "accumulated_delta_var"])
        rho, eps, a, s = (
            group["rho"],
            group["epsilon"],
            state["accumulated_grad"],
            state["accumulated_delta_var"],
        )
        a *= rho
        a += (1 - rho) * grad * grad
        delta = -((s + eps).sqrt() * grad) / (a + eps).sqrt()
        s *= rho
        s += (1 - rho) * delta * delta
        param += group["lr"] * delta


class KerasRMSprop(KerasOptimizer):
    """keras.optimizers.RMSprop: v = rho v + (1 - rho) g^2;  p -= lr g / sqrt(v + eps).

    torch.optim.RMSprop divides by sqrt(v) + eps instead.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(params, {"lr": learning_rate, "rho": rho, "epsilon": epsilon, **common})

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["velocity"])
        rho, v = group["rho"], state["velocity"]
        v *= rho
        v += (1 - rho) * grad * grad
        param -= group["lr"] * grad / (v + group["epsilon"]).sqrt()


TORCH_OPTIMIZERS: dict[str, type[KerasOptimizer]] = {
    "sgd": KerasSGD,
    "adam": KerasAdam,
    "rmsprop": KerasRMSprop,
    "adadelta": KerasAdadelta,
    "adagrad": KerasAdagrad,
    "nadam": KerasNadam,
    "adamw": KerasAdamW,
}


def make_torch_optimizer(
    engine_optimizer_config: dict[str, Any] | str, params: Iterable[torch.Tensor]
) -> KerasOptimizer:
    """The torch optimizer for ``optimizer.get_config()`` of the engine (or a name: "adam").

    The engine checks the arguments and fills in Keras's defaults first.
    """
    config = engine_optimizers.get(engine_optimizer_config).get_config()
    name = config.pop("name")
    if name not in TORCH_OPTIMIZERS:
        raise ValueError(
            f"the PyTorch reference has no optimizer {name!r}; choose one of "
            f"{', '.join(TORCH_OPTIMIZERS)}"
        )
    return TORCH_OPTIMIZERS[name](params, **config)


# --------------------------------------------------------------------------- losses
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


# -------------------------------------------------------------------------- trainer
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
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        shuffle: bool = True,
        shuffle_rng: np.random.Generator | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
    ) -> dict[str, list[float]]:
        """Train like ``Sequential.fit``; returns the history
        {"loss", "accuracy", "val_loss", "val_accuracy"}.

        validation_split takes the last floor-complement fraction before shuffling; each epoch
        is shuffled with ``shuffle_rng.permutation(n)`` (default: this trainer's generator).
        ``history`` and ``epoch_seconds`` (training time per epoch, validation excluded) hold
        the last fit's epochs.
        """
        rng = (self.shuffle_rng if shuffle_rng is None else shuffle_rng) if shuffle else None
        x, y, validation_data, batch_size, rng = fit_inputs(
            self.engine_model, x, y, batch_size, validation_split, validation_data, rng
        )
        self.history, self.epoch_seconds = {}, []
        with self.own_random_state():
            for epoch in range(epochs):
                logs = self.train_epoch(x, y, batch_size, rng)
                if validation_data is not None:
                    logs.update(
                        {
                            f"val_{k}": v
                            for k, v in self.evaluate_logs(*validation_data, batch_size).items()
                        }
                    )
                for key, value in logs.items():
                    self.history.setdefault(key, []).append(value)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, logs)
        return self.history

    def train_epoch(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> dict[str, float]:
        """One pass in mini-batches, in the engine's order; the logs are sample-weighted means."""
        order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
        self.torch_model.train()
        totals = Totals(self.metrics)
        start = time.perf_counter()
        for begin in range(0, len(x), batch_size):
            batch = order[begin : begin + batch_size]
            loss, y_pred = train_step(
                self.torch_model, self.loss, self.optimizer, *self.tensors(x[batch], y[batch])
            )
            totals.add(loss.item(), y[batch], y_pred.detach().numpy(), len(batch))
        self.epoch_seconds.append(time.perf_counter() - start)
        return totals.logs()

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> tuple[float, float]:
        """(loss, accuracy) with dropout off (keras.Model.evaluate); accuracy is NaN without the
        metric."""
        logs = self.evaluate_logs(*self.engine_model.standardize(x, y, "evaluate"), batch_size)
        return logs["loss"], logs.get("accuracy", math.nan)

    @torch.no_grad()
    def evaluate_logs(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        self.torch_model.eval()
        totals = Totals(self.metrics)
        for begin in range(0, len(x), batch_size):
            xb, yb = self.tensors(x[begin : begin + batch_size], y[begin : begin + batch_size])
            z, y_pred = self.torch_model.forward_with_logits(xb)
            totals.add(
                self.loss(z, y_pred, yb).item(),
                y[begin : begin + batch_size],
                y_pred.numpy(),
                len(yb),
            )
        return totals.logs()

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


# --------------------------------------------------------------------------- parity
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
    if (
        model.optimizer is None
        and optimizer_config is None
        or model.loss is None
        and loss_name is None
    ):
        raise ValueError("parity_report needs a compiled model, or optimizer_config and loss_name")
    optimizer_config = optimizer_config or model.optimizer.get_config()
    engine = dropout_free_copy(model, optimizer_config, loss_name or model.loss.name)
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
    outputs = []
    h = x
    for layer in engine.layers:
        h = layer.forward(h, training=True)
        outputs.append(h.copy())
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
