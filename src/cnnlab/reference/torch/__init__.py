"""The same network in PyTorch, built from a cnnlab model config: the engine's framework twin.

The package, by role:
- ``layout``: NHWC <-> NCHW, Keras's "same" padding, weights in torch's and the engine's layout;
- ``layers``: the twin of every engine layer (``TORCH_LAYERS``), Keras's conventions exactly;
- ``onednn``: the workaround for PyTorch 2.13's heap corruption (strides larger than kernels);
- ``model``: ``TorchSequential``, ``build_torch_twin`` / ``build_torch_model``, weights copied
  both ways;
- ``optimizers``: Keras's update rules operation for operation (``make_torch_optimizer``);
- ``losses``: Keras's loss values with the engine's gradients (``KerasLoss``);
- ``trainer``: ``TorchTrainer``, fit/evaluate/predict with the engine's batches and callbacks;
- ``parity``: ``parity_report``, how closely the two engines agree.

Every name is importable from here (``from cnnlab.reference.torch import TorchTrainer``).
This is the only cnnlab package that imports torch.
"""

from __future__ import annotations

from cnnlab.reference.torch.layers import (
    ACTIVATIONS,
    TORCH_LAYERS,
    TorchActivation,
    TorchAveragePooling2D,
    TorchBatchNormalization,
    TorchConv2D,
    TorchDense,
    TorchDropout,
    TorchFlatten,
    TorchGlobalAveragePooling2D,
    TorchGlobalMaxPooling2D,
    TorchLayer,
    TorchMaxPooling2D,
    TorchReLU,
    TorchRescaling,
    TorchReshape,
    TorchSoftmax,
    TorchZeroPadding2D,
)
from cnnlab.reference.torch.layout import (
    TORCH_DTYPES,
    Pads,
    channels_first,
    channels_last,
    engine_layout,
    keras_pads,
    pad,
    same_padding,
    torch_layout,
)
from cnnlab.reference.torch.losses import LOSS_VALUES, LOSSES_FROM_LOGITS, KerasLoss
from cnnlab.reference.torch.model import (
    Config,
    TorchSequential,
    build_torch_model,
    build_torch_twin,
    copy_weights_from_torch,
    copy_weights_to_torch,
    torch_param,
)
from cnnlab.reference.torch.onednn import onednn, strides_skip_pixels
from cnnlab.reference.torch.optimizers import (
    TORCH_OPTIMIZERS,
    KerasAdadelta,
    KerasAdagrad,
    KerasAdam,
    KerasAdamW,
    KerasNadam,
    KerasOptimizer,
    KerasRMSprop,
    KerasSGD,
    make_torch_optimizer,
)
from cnnlab.reference.torch.parity import format_parity, parity_report
from cnnlab.reference.torch.trainer import TorchTrainer, seeded_torch_generator, train_step

__all__ = [
    "ACTIVATIONS",
    "LOSSES_FROM_LOGITS",
    "LOSS_VALUES",
    "TORCH_DTYPES",
    "TORCH_LAYERS",
    "TORCH_OPTIMIZERS",
    "Config",
    "KerasAdadelta",
    "KerasAdagrad",
    "KerasAdam",
    "KerasAdamW",
    "KerasLoss",
    "KerasNadam",
    "KerasOptimizer",
    "KerasRMSprop",
    "KerasSGD",
    "Pads",
    "TorchActivation",
    "TorchAveragePooling2D",
    "TorchBatchNormalization",
    "TorchConv2D",
    "TorchDense",
    "TorchDropout",
    "TorchFlatten",
    "TorchGlobalAveragePooling2D",
    "TorchGlobalMaxPooling2D",
    "TorchLayer",
    "TorchMaxPooling2D",
    "TorchReLU",
    "TorchRescaling",
    "TorchReshape",
    "TorchSequential",
    "TorchSoftmax",
    "TorchTrainer",
    "TorchZeroPadding2D",
    "build_torch_model",
    "build_torch_twin",
    "channels_first",
    "channels_last",
    "copy_weights_from_torch",
    "copy_weights_to_torch",
    "engine_layout",
    "format_parity",
    "keras_pads",
    "make_torch_optimizer",
    "onednn",
    "pad",
    "parity_report",
    "same_padding",
    "seeded_torch_generator",
    "strides_skip_pixels",
    "torch_layout",
    "torch_param",
    "train_step",
]
