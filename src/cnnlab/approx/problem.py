"""The problem of an approx run: its settings, the inputs the network sees, the model and
the sampled points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..datasets import function2d
from ..datasets.function2d import Domain, Function2D
from ..engine import Sequential, optimizers
from ..engine.batches import training_count
from ..errors import CnnlabError
from ..training import fitting_checks, refuse_failed
from ..utils import to_categorical

BUILTIN_APPROX_MODELS = ("seed-dense", "patch-cnn")
GRID_RESOLUTION = 200  # the fine grid of the original, field and error figures
SNAPSHOT_RESOLUTION = 100  # the grid recorded at a few epochs during training
SNAPSHOT_COUNT = 6  # panels of the snapshot strip, "before training" included
PATCH_RESOLUTION = 50  # patch-cnn: the coordinate patch's spacing is 1/50 of the domain
PREDICT_BATCH = 4096
MAX_SAMPLES = 10_000_000
DATA_FILE = "approx.npz"


# --------------------------------------------------------------------------- settings


@dataclass
class ApproxSettings:
    """Everything that decides an approximation run; saved as config.json["training"]."""

    function: str = "ring-band"
    samples: int = 50_000
    domain: str | None = None  # "x_low,x_high,y_low,y_high"; None: the function's own
    sampling: str = "uniform"
    noise: float = 0.0
    test_fraction: float = 0.1
    validation_split: float = 0.1
    model: str = "seed-dense"
    patch_size: int = 5
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    seed: int = 0

    def validate(self) -> None:
        """Refuse settings that cannot work, before any point is sampled."""
        refuse_failed(
            [
                (
                    2 <= self.samples <= MAX_SAMPLES,
                    f"samples must be between 2 and {MAX_SAMPLES:,}, received {self.samples}",
                ),
                *fitting_checks(self),
                (
                    0 < self.test_fraction < 1,
                    f"test fraction must be in (0, 1), received {self.test_fraction}",
                ),
                (
                    self.sampling in function2d.SAMPLINGS,
                    f"unknown sampling {self.sampling!r}: choose one of "
                    f"{', '.join(function2d.SAMPLINGS)}",
                ),
                (
                    self.patch_size >= 3 and self.patch_size % 2 == 1,
                    f"patch size must be odd and at least 3, received {self.patch_size}",
                ),
            ]
        )


def parse_domain(text: str) -> Domain:
    """``"x_low,x_high,y_low,y_high"`` -> ``((x_low, x_high), (y_low, y_high))``; CnnlabError if
    malformed."""
    expected = "give four numbers x_low,x_high,y_low,y_high with low < high, e.g. 0,1,0,1"
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise CnnlabError(f"domain {text!r} is not valid: {expected}") from None
    if (
        len(values) != 4
        or not all(math.isfinite(v) for v in values)
        or values[0] >= values[1]
        or values[2] >= values[3]
    ):
        raise CnnlabError(f"domain {text!r} is not valid: {expected}")
    return (values[0], values[1]), (values[2], values[3])


# --------------------------------------------------------------------------- inputs and model


@dataclass(frozen=True)
class InputEncoder:
    """Points of the domain -> network inputs: scaled coordinates (n, 2), or coordinate patches
    (n, k, k, 2)."""

    domain: Domain
    patch_size: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        k = self.patch_size
        return (2,) if k is None else (k, k, 2)

    def scale(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) points -> (n, 2) float32 in the unit square (the domain's corners -> 0 and 1)."""
        (x_low, x_high), (y_low, y_high) = self.domain
        low, width = np.array([x_low, y_low]), np.array([x_high - x_low, y_high - y_low])
        return ((np.asarray(points, dtype=np.float64) - low) / width).astype(np.float32)

    def encode(self, points: np.ndarray) -> np.ndarray:
        """Network inputs for ``points`` (n, 2)."""
        scaled = self.scale(points)
        if self.patch_size is None:
            return scaled
        offsets = (np.arange(self.patch_size) - self.patch_size // 2) / PATCH_RESOLUTION
        patches = np.empty((len(scaled), self.patch_size, self.patch_size, 2), dtype=np.float32)
        patches[..., 0] = (
            scaled[:, None, None, 0] + offsets[None, None, :]
        )  # u varies along columns
        patches[..., 1] = scaled[:, None, None, 1] + offsets[None, :, None]  # v varies along rows
        return patches

    def describe(self) -> dict[str, Any]:
        """The encoding as JSON, for config.json["inputs"]."""
        (x_low, x_high), (y_low, y_high) = self.domain
        text = {
            "scaling": "u = (x - x_low) / (x_high - x_low), v = (y - y_low) / (y_high - y_low)",
            "domain": [[x_low, x_high], [y_low, y_high]],
        }
        if self.patch_size is not None:
            text["patch"] = {
                "size": self.patch_size,
                "spacing": 1 / PATCH_RESOLUTION,
                "channels": ["u", "v"],
            }
        return text


def patch_cnn_layers(outputs: int, activation: str) -> list[dict]:
    """patch-cnn: Conv2D(16, 3x3) - Conv2D(32, 3x3, same) - Flatten - Dense(64, relu) -
    Dense(outputs)."""
    return [
        models.conv("conv2d", 16),
        models.conv("conv2d_1", 32, "same"),
        models.layer("Flatten", "flatten"),
        models.dense("dense", 64, "relu"),
        models.dense("dense_1", outputs, activation),
    ]


def approx_model_config(
    spec: str, encoder: InputEncoder, outputs: int, regression: bool
) -> dict[str, Any]:
    """The config of ``spec`` with ``outputs`` units: softmax for classes, linear for regression.

    Built-ins get their last activation set; a model file is taken as it is (its last layer
    must already have ``outputs`` units).
    """
    if spec == "patch-cnn":
        input_layer = {
            "class_name": "InputLayer",
            "config": {"name": "input_layer", "batch_shape": [None, *encoder.input_shape]},
        }
        return {
            "name": spec,
            "layers": [
                input_layer,
                *patch_cnn_layers(outputs, "linear" if regression else "softmax"),
            ],
        }
    config = models.model_config(spec, encoder.input_shape, outputs)
    if regression and spec in models.BUILTIN_MODELS:
        config["layers"][-1]["config"]["activation"] = "linear"
    return config


def check_model_spec(spec: str) -> None:
    """Refuse the image-only built-ins and missing files with a list of what works."""
    if spec in BUILTIN_APPROX_MODELS or (
        spec not in models.BUILTIN_MODELS and Path(spec).is_file()
    ):
        return
    raise CnnlabError(
        f"unknown model {spec!r} for approx: use {', '.join(BUILTIN_APPROX_MODELS)} or a "
        "JSON/TOML model file"
    )


# --------------------------------------------------------------------------- the problem


@dataclass
class ApproxProblem:
    """A function, its sampled data and a compiled model, ready to train."""

    settings: ApproxSettings
    function: Function2D
    encoder: InputEncoder
    x_train: np.ndarray  # (n, 2) points of the domain
    y_train: np.ndarray  # int64 labels, or float32 values
    x_test: np.ndarray
    y_test: np.ndarray
    model: Sequential
    model_config: dict[str, Any]

    @property
    def regression(self) -> bool:
        return self.function.kind == "regression"

    @property
    def class_names(self) -> list[str]:
        return [f"{value:g}" for value in self.function.classes]

    def targets(self, y: np.ndarray) -> np.ndarray:
        """What the loss compares with: one-hot rows, or (n, 1) values."""
        return y.reshape(-1, 1) if self.regression else to_categorical(y, self.function.num_classes)


def prepare(settings: ApproxSettings) -> ApproxProblem:
    """Check the settings, choose the function, sample the points and build the compiled model."""
    settings.validate()
    check_model_spec(settings.model)
    domain = parse_domain(settings.domain) if settings.domain is not None else None
    function = function2d.get_function(settings.function, domain)
    (x_train, y_train), (x_test, y_test) = function2d.make_dataset(
        function,
        settings.samples,
        function.domain,
        settings.sampling,
        settings.noise,
        settings.test_fraction,
        settings.seed,
    )
    check_split(settings, len(x_train), len(x_test))
    encoder = InputEncoder(
        function.domain, settings.patch_size if settings.model == "patch-cnn" else None
    )
    regression = function.kind == "regression"
    outputs = 1 if regression else function.num_classes
    config = approx_model_config(settings.model, encoder, outputs, regression)
    model = models.build_model(config, outputs, settings.seed)
    model.compile(
        optimizer=optimizers.get(settings.optimizer, settings.learning_rate),
        loss="mse" if regression else "categorical_crossentropy",
        metrics=[] if regression else ["accuracy"],
    )
    return ApproxProblem(
        settings, function, encoder, x_train, y_train, x_test, y_test, model, config
    )


def check_split(settings: ApproxSettings, n_train: int, n_test: int) -> None:
    """At least one test point, a validation set when asked for, and a batch no larger than the
    training set."""
    if n_test < 1:
        raise CnnlabError(
            f"test fraction {settings.test_fraction} of {settings.samples} samples leaves no test "
            "point"
        )
    fitted = training_count(n_train, settings.validation_split)
    if settings.validation_split and fitted in (0, n_train):
        raise CnnlabError(
            f"{n_train} training points are too few for validation split "
            f"{settings.validation_split}"
        )
    if settings.batch_size > fitted:
        raise CnnlabError(
            f"batch size {settings.batch_size} is larger than the {fitted} training points"
        )
