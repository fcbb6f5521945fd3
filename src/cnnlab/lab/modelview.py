"""Inside a run's own model, for the lab's "Your model" page: predictions, feature maps, filters,
saliency.

Everything is computed by the engine from the run's ``model.cnnlab``
(:func:`cnnlab.runs.load_run_model`, ``model.feature_maps``, ``model.input_gradient``).
Arrays travel to the page as base64 uint8, each feature-map channel scaled to 0..255 on
its own, and are drawn on <canvas> there.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .. import runs
from ..errors import CnnlabError
from .playground import b64, to_bytes

SPATIAL = ("Conv2D", "MaxPooling2D", "AveragePooling2D")
MAX_IMAGES = 48  # images shown for one confusion-matrix cell
MAX_UPLOAD = 5_000_000  # bytes of an uploaded or drawn image


class RunModel:
    """A run's trained model, and its test images and predictions once asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.model = runs.load_run_model(path)
        self.config = runs.read_json(path, "config.json")
        metrics = runs.read_json(path, "metrics.json") if (path / "metrics.json").is_file() else {}
        count = self.model.output_shape[-1]
        names = metrics.get("class_names") or []
        self.class_names = (
            [str(n) for n in names] if len(names) == count else [str(k) for k in range(count)]
        )
        self.lock = threading.Lock()
        self.test: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def is_image_model(self) -> bool:
        return len(self.model.input_shape) == 3 and self.config.get("command", "train") == "train"

    def require_images(self) -> None:
        if not self.is_image_model:
            raise CnnlabError(
                f"run {self.path.name} is not an image classifier; this view needs a `cnnlab "
                "train` run"
            )

    def test_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x_test, y_test, predicted probabilities) of the run's own dataset, loaded and predicted
        once."""
        self.require_images()
        with self.lock:
            if self.test is None:
                from ..training import TrainSettings, load_data

                training = self.config.get("training", {})
                settings = TrainSettings(
                    dataset=str(training.get("dataset") or self.config.get("dataset")),
                    train_size=2,
                    test_size=training.get("test_size"),
                    data_dir=training.get("data_dir"),
                )
                data = load_data(settings)
                if tuple(self.model.input_shape) != data.input_shape:
                    raise CnnlabError(
                        f"the model expects {tuple(self.model.input_shape)}, its dataset has "
                        f"{data.input_shape}"
                    )
                self.test = (data.x_test, data.y_test, self.model.predict(data.x_test, verbose=0))
            return self.test

    # ------------------------------------------------------------------ confusion-matrix cells
    def cell_images(self, true: int, predicted: int) -> dict[str, Any]:
        """The test images of true class ``true`` predicted as ``predicted``
        (at most MAX_IMAGES)."""
        x, y, probabilities = self.test_data()
        chosen = np.flatnonzero((y == true) & (probabilities.argmax(axis=1) == predicted))
        return {
            "true": true,
            "predicted": predicted,
            "count": int(len(chosen)),
            "images": [
                {
                    "index": int(i),
                    "png": png_data_url(x[i]),
                    "confidence": float(probabilities[i, predicted]),
                }
                for i in chosen[:MAX_IMAGES]
            ],
        }

    # ------------------------------------------------------------------ one image
    def test_image(self, index: int) -> tuple[np.ndarray, int]:
        x, y, _ = self.test_data()
        if not 0 <= index < len(x):
            raise CnnlabError(
                f"test image {index} is out of range: the test set has {len(x)} images"
            )
        return x[index], int(y[index])

    def explain(self, image: np.ndarray) -> dict[str, Any]:
        """Prediction, class probabilities, feature maps of every conv and pool layer, first
        filters, saliency."""
        self.require_images()
        with self.lock:
            trace = self.model.feature_maps(image[None])
            probabilities = trace[-1][1][0]
            predicted = int(probabilities.argmax())
            gradient = self.model.input_gradient(image[None], class_index=predicted)[0]
        kinds = {layer.name: type(layer).__name__ for layer in self.model.layers}
        saliency = np.abs(gradient).sum(axis=-1)
        return {
            "predicted": self.class_names[predicted],
            "predicted_index": predicted,
            "probabilities": [float(p) for p in probabilities],
            "class_names": self.class_names,
            "input": image_payload(image),
            "saliency": {
                "shape": list(saliency.shape),
                "values": b64(to_bytes(saliency, 0.0, float(saliency.max()))),
            },
            "layers": [
                maps_payload(name, kinds[name], out[0])
                for name, out in trace
                if kinds.get(name) in SPATIAL
            ],
            "filters": self.filters(),
        }

    def filters(self) -> dict[str, Any] | None:
        """The first conv layer's kernels as (filters, kh, kw) pictures (input channels averaged),
        one common scale."""
        layer = next(
            (layer for layer in self.model.layers if type(layer).__name__ == "Conv2D"), None
        )
        if layer is None:
            return None
        kernel = layer.params["kernel"].mean(axis=2)  # (kh, kw, cin, cout) -> (kh, kw, cout)
        bound = float(np.abs(kernel).max()) or 1.0
        return {
            "layer": layer.name,
            "shape": list(kernel.shape),
            "values": b64(to_bytes(kernel.transpose(2, 0, 1), -bound, bound)),
        }

    # ------------------------------------------------------------------ images from the page
    def prepare_image(self, data_url: str, drawn: bool) -> np.ndarray:
        """A PNG/JPEG data URL -> the model's input (H, W, C) in [0, 1], prepared as its data.

        Light-on-dark as MNIST (a light background is inverted); a drawing is cropped to its
        strokes and centred with a margin of 4/28 of the side, as MNIST's digits are.
        """
        self.require_images()
        from PIL import Image, UnidentifiedImageError

        height, width, channels = self.model.input_shape
        raw = decode_data_url(data_url)
        try:
            with Image.open(io.BytesIO(raw)) as opened:
                picture = opened.convert("L" if channels == 1 else "RGB")
        except (UnidentifiedImageError, OSError) as err:
            raise CnnlabError(f"not a readable image ({err})") from None
        pixels = np.asarray(picture, dtype=np.float32) / 255
        if pixels.mean() > 0.5:
            pixels = 1 - pixels
        if drawn:
            pixels = centred(pixels, max(1, round(height * 4 / 28)), (height, width))
        resized = Image.fromarray(np.uint8(np.clip(pixels, 0, 1) * 255)).resize(
            (width, height), Image.Resampling.LANCZOS
        )
        image = np.asarray(resized, dtype=np.float32) / 255
        if drawn and channels == 1:
            image = centre_of_mass_centred(image)
        return image.reshape(height, width, channels)

    # ------------------------------------------------------------------ conv arithmetic
    def arithmetic(self) -> list[dict[str, Any]]:
        """Each layer's input and output shape, with kernel, strides and padding for conv and pool
        layers."""
        rows, shape = [], tuple(self.model.input_shape)
        for layer in self.model.layers:
            config = layer.get_config()
            row = {
                "name": layer.name,
                "kind": type(layer).__name__,
                "input": list(shape),
                "output": list(layer.output_shape),
            }
            kernel = config.get("kernel_size") or config.get("pool_size")
            if kernel is not None:
                row.update(
                    kernel=list(kernel),
                    strides=list(config.get("strides") or kernel),
                    padding=config.get("padding", "valid"),
                    filters=config.get("filters"),
                )
            rows.append(row)
            shape = tuple(layer.output_shape)
        return rows


def centred(pixels: np.ndarray, margin_of: int, size: tuple[int, int]) -> np.ndarray:
    """The strokes' bounding box, made square and padded by margin (in output pixels), as a (S, S)
    array."""
    rows, cols = np.flatnonzero(pixels.max(axis=1) > 0.1), np.flatnonzero(pixels.max(axis=0) > 0.1)
    if len(rows) == 0:
        return pixels
    crop = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(crop.shape)
    pad = math.ceil(side * margin_of / max(size[0] - 2 * margin_of, 1))
    square = np.zeros((side + 2 * pad, side + 2 * pad), dtype=np.float32)
    top, left = pad + (side - crop.shape[0]) // 2, pad + (side - crop.shape[1]) // 2
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return square


def centre_of_mass_centred(image: np.ndarray) -> np.ndarray:
    """(H, W) shifted by whole pixels so that its centre of mass is the image's centre, as MNIST's
    digits are."""
    total = image.sum()
    if total <= 0:
        return image
    rows, cols = np.indices(image.shape)
    shift = [
        round((n - 1) / 2 - float((grid * image).sum() / total))
        for n, grid in zip(image.shape, (rows, cols), strict=True)
    ]
    shifted = np.zeros_like(image)
    (dy, dx), (h, w) = shift, image.shape
    shifted[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return shifted


def decode_data_url(data_url: str) -> bytes:
    head, _, body = data_url.partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise CnnlabError("expected an image as a data URL (data:image/png;base64,...)")
    if len(body) > MAX_UPLOAD * 4 // 3:
        raise CnnlabError(f"the image is larger than {MAX_UPLOAD:,} bytes")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise CnnlabError("the image's base64 data is damaged") from None


def image_payload(image: np.ndarray) -> dict[str, Any]:
    """(H, W, C) in [0, 1] -> shape and uint8 pixels (row-major, channels last)."""
    return {"shape": list(image.shape), "values": b64(to_bytes(image, 0.0, 1.0))}


def maps_payload(name: str, kind: str, maps: np.ndarray) -> dict[str, Any]:
    """(H, W, C) feature maps -> (C, H, W) uint8, each channel scaled from its own min to its
    max."""
    low, high = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
    scaled = (maps - low) / np.where(high > low, high - low, 1.0)
    return {
        "name": name,
        "kind": kind,
        "shape": list(maps.shape),
        "values": b64(to_bytes(scaled.transpose(2, 0, 1), 0.0, 1.0)),
    }


def png_data_url(image: np.ndarray) -> str:
    """(H, W, C) in [0, 1] -> a data:image/png URL."""
    from PIL import Image

    pixels = np.uint8(np.clip(image, 0, 1) * 255)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
