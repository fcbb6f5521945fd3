"""Inside a trained network (``cnnlab explain``): feature maps and a saliency map for one image.

Feature maps are the outputs of every convolution and pooling layer for the chosen test
image; the saliency map is |d score / d pixel|, the gradient of the predicted class's
score with respect to the input, computed by the engine's own backward pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plots
from .engine import Sequential
from .errors import CnnlabError

SPATIAL_LAYERS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")


def spatial_maps(model: Sequential, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(layer name, (H, W, C) output) of every conv and pool layer for one image (H, W, C)."""
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    return [
        (name, out[0])
        for name, out in model.feature_maps(image[None])
        if kinds[name] in SPATIAL_LAYERS
    ]


def saliency(model: Sequential, image: np.ndarray) -> tuple[np.ndarray, int]:
    """(|gradient| summed over channels (H, W), predicted class) for one image (H, W, C)."""
    predicted = int(model.predict(image[None], verbose=0).argmax())
    gradient = model.input_gradient(image[None], class_index=predicted)[0]
    return np.abs(gradient).sum(axis=-1), predicted


def explain_image(
    model: Sequential, image: np.ndarray, true_label: str, class_names: list[str], figures: Path
) -> dict:
    """Write feature_maps.png and saliency.png for one image; returns what was shown."""
    if len(model.input_shape) != 3:
        raise CnnlabError(
            "explain needs an image model (input (H, W, C)); this model takes vectors"
        )
    maps = spatial_maps(model, image)
    if maps:
        plots.plot_feature_maps(maps, figures / "feature_maps.png")
    heat, predicted = saliency(model, image)
    title = f"Saliency: true {true_label}, predicted {class_names[predicted]}"
    plots.plot_saliency(image, heat, figures / "saliency.png", title=title)
    return {
        "layers": [name for name, _ in maps],
        "predicted": class_names[predicted],
        "true": true_label,
    }
