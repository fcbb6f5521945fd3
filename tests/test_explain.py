"""cnnlab explain: feature maps of every conv/pool layer and a saliency map, on a trained run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab import load_model
from cnnlab.cli import main
from cnnlab.datasets import load_dataset, prepare_images
from cnnlab.explain import saliency, spatial_maps


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "run"
    argv = [
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "300",
        "--test-size",
        "50",
        "--batch-size",
        "32",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return out


def test_explain_writes_both_figures_into_the_report(run, capsys):
    assert main(["explain", str(run), "--index", "4"]) == 0
    out = capsys.readouterr().out
    assert "Test image 4: true" in out and "conv2d, max_pooling2d, conv2d_1, max_pooling2d_1" in out
    for name in ("feature_maps.png", "saliency.png"):
        with Image.open(run / "figures" / name) as image:
            assert 300 <= image.width <= 4000 and 150 <= image.height <= 4000
    page = (run / "report.html").read_text()
    assert "The output of each layer for one test image" in page and "Saliency" in page


def test_feature_maps_are_the_layer_outputs_and_saliency_the_engine_gradient(run):
    model = load_model(run / "model.cnnlab")
    image = prepare_images(load_dataset("digits").x_test[4:5])[0]
    maps = spatial_maps(model, image)
    assert [(name, m.shape) for name, m in maps] == [
        ("conv2d", (8, 8, 32)),
        ("max_pooling2d", (4, 4, 32)),
        ("conv2d_1", (4, 4, 64)),
        ("max_pooling2d_1", (2, 2, 64)),
    ]
    np.testing.assert_array_equal(maps[0][1], model.layers[0].forward(image[None])[0])
    heat, predicted = saliency(model, image)
    assert predicted == int(model.predict(image[None]).argmax())
    np.testing.assert_allclose(
        heat, np.abs(model.input_gradient(image[None], predicted)[0]).sum(-1)
    )


def test_explain_refuses_an_index_outside_the_test_set(run, capsys):
    assert main(["explain", str(run), "--index", "5000"]) == 2
    assert "out of range" in capsys.readouterr().err
