"""Datasets sampled from 2-variable functions: seed 000's ring-band, other built-ins,
expressions."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.datasets import function2d
from cnnlab.datasets.function2d import (
    BUILTIN_FUNCTIONS,
    get_function,
    grid,
    make_dataset,
    sample_points,
)
from cnnlab.errors import CnnlabError
from cnnlab.expressions import evaluate_expression

CLASSIFIERS = [name for name, f in BUILTIN_FUNCTIONS.items() if f.kind == "classification"]


def seed_fun(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Seed 000's function, copied from the seed."""
    res1 = np.power(x, 2) + np.power(y, 2) < 1
    res2 = np.power(x, 2) + np.power(y, 2) > 0.5
    res3 = np.absolute(x - y) > 0.15
    res = np.logical_and(res1, res2)
    res = np.logical_and(res, res3)
    return res.astype("uint8")


def test_ring_band_is_the_seed_function() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1.5, 1.5, 10_000), rng.uniform(-1.5, 1.5, 10_000)
    ring_band = BUILTIN_FUNCTIONS["ring-band"]
    np.testing.assert_array_equal(ring_band(x, y), seed_fun(x, y))
    assert ring_band.domain == ((0.0, 1.0), (0.0, 1.0))  # the seed draws np.random.rand points


def test_ring_band_dataset_labels_follow_the_seed() -> None:
    (x_train, y_train), (x_test, y_test) = make_dataset("ring-band", n_samples=2000)
    for points, labels in ((x_train, y_train), (x_test, y_test)):
        x, y = points.astype(np.float64).T
        np.testing.assert_array_equal(labels, seed_fun(x, y))


def test_default_split_is_the_seeds() -> None:
    (x_train, _), (x_test, _) = make_dataset("ring-band")
    assert (len(x_train), len(x_test)) == (45_000, 5_000)
    assert np.ceil(len(x_train) * 0.9 / 128) == 317  # the steps per epoch in the seed's Keras log


@pytest.mark.parametrize("name", list(BUILTIN_FUNCTIONS))
def test_shapes_and_dtypes(name: str) -> None:
    (x_train, y_train), (x_test, y_test) = make_dataset(name, n_samples=1000, test_fraction=0.25)
    assert x_train.shape == (750, 2) and x_test.shape == (250, 2)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.shape == (750,) and y_test.shape == (250,)
    expected = np.float32 if BUILTIN_FUNCTIONS[name].kind == "regression" else np.int64
    assert y_train.dtype == y_test.dtype == expected


@pytest.mark.parametrize("name", list(BUILTIN_FUNCTIONS))
def test_points_lie_in_the_domain(name: str) -> None:
    (x_train, _), (x_test, _) = make_dataset(name, n_samples=1000)
    points = np.concatenate([x_train, x_test])
    (x_low, x_high), (y_low, y_high) = BUILTIN_FUNCTIONS[name].domain
    assert np.all((points[:, 0] >= x_low) & (points[:, 0] <= x_high))
    assert np.all((points[:, 1] >= y_low) & (points[:, 1] <= y_high))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_both_classes_present(name: str) -> None:
    (_, y_train), (_, y_test) = make_dataset(name, n_samples=2000)
    counts = np.bincount(np.concatenate([y_train, y_test]), minlength=2)
    assert counts.size == 2
    assert counts.min() > 0.1 * counts.sum()


@pytest.mark.parametrize("name", list(BUILTIN_FUNCTIONS))
def test_formula_matches_the_function(name: str) -> None:
    f = BUILTIN_FUNCTIONS[name]
    xx, yy = grid(f.domain, 101)
    np.testing.assert_allclose(
        evaluate_expression(f.formula, xx, yy), f(xx, yy), rtol=1e-12, atol=1e-12
    )


def test_sine_is_regression() -> None:
    sine = get_function("sine")
    assert sine.kind == "regression" and sine.num_classes == 0
    (x_train, y_train), _ = make_dataset(sine, n_samples=500)
    x, y = x_train.astype(np.float64).T
    np.testing.assert_allclose(y_train, np.sin(3 * x) * np.cos(3 * y), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sampling", ["uniform", "grid"])
def test_same_seed_same_data(sampling: str) -> None:
    first = make_dataset("spiral", n_samples=500, sampling=sampling, noise=0.1, seed=7)
    second = make_dataset("spiral", n_samples=500, sampling=sampling, noise=0.1, seed=7)
    other = make_dataset("spiral", n_samples=500, sampling=sampling, noise=0.1, seed=8)
    for part, again in zip((*first[0], *first[1]), (*second[0], *second[1]), strict=True):
        np.testing.assert_array_equal(part, again)
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.25])
def test_label_noise_flips_the_requested_fraction(noise: float) -> None:
    (x_train, y_train), (x_test, y_test) = make_dataset("xor", n_samples=4000, noise=noise)
    clean = BUILTIN_FUNCTIONS["xor"].targets(x_train)
    assert np.count_nonzero(y_train != clean) == round(noise * len(y_train))
    np.testing.assert_array_equal(
        y_test, BUILTIN_FUNCTIONS["xor"].targets(x_test)
    )  # the test set stays clean


def test_label_noise_moves_labels_to_other_classes() -> None:
    f = get_function("floor(2*x) + floor(2*y)", domain=((0, 1.999), (0, 1.999)))
    assert f.classes == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    (x_train, y_train), _ = make_dataset(f, n_samples=5000, noise=0.5)
    clean = f.targets(x_train)
    changed = y_train != clean
    assert np.count_nonzero(changed) == round(0.5 * len(y_train))
    assert set(np.unique(y_train[changed])) == set(range(7))


def test_regression_noise_has_the_requested_std() -> None:
    (x_train, y_train), _ = make_dataset("sine", n_samples=20_000, noise=0.2)
    residual = y_train - BUILTIN_FUNCTIONS["sine"].targets(x_train)
    assert residual.dtype == np.float32
    assert abs(residual.std() - 0.2) < 0.01
    assert abs(residual.mean()) < 0.01


def test_expression_function() -> None:
    f = get_function("x**2 + y**2 < 0.5")
    assert f.kind == "classification" and f.classes == (0.0, 1.0)
    assert f.domain == function2d.DEFAULT_DOMAIN
    (x_train, y_train), _ = make_dataset(f, n_samples=1000)
    np.testing.assert_array_equal(y_train, BUILTIN_FUNCTIONS["circle"].targets(x_train))


def test_expression_with_negative_classes_gets_labels_from_zero() -> None:
    f = get_function("sign(x)")
    assert f.classes == (-1.0, 0.0, 1.0)
    labels = f.targets(np.array([[-0.5, 0.0], [0.0, 0.0], [0.5, 0.0]], dtype=np.float32))
    np.testing.assert_array_equal(labels, [0, 1, 2])


def test_expression_regression_kind() -> None:
    assert get_function("x * y").kind == "regression"


def test_builtin_with_another_domain() -> None:
    f = get_function("ring-band", domain=((-1.5, 1.5), (-1.5, 1.5)))
    assert f.domain == ((-1.5, 1.5), (-1.5, 1.5))
    (x_train, _), _ = make_dataset(f, n_samples=1000)
    assert x_train.min() < -1


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("spirl", r"unknown function 'spirl': use one of ring-band, circle"),
        ("log(x)", r"NaN or infinity at \d+ of 40401 points, e\.g\. x=-1, y=-1"),
        ("x > 5", r"'x > 5' is 0 everywhere on the domain"),
        ("open('f')", r"function 'open' is not allowed"),
    ],
)
def test_get_function_refuses(text: str, pattern: str) -> None:
    with pytest.raises(CnnlabError, match=pattern):
        get_function(text)


def test_value_outside_the_probed_classes() -> None:
    f = get_function("floor(x)", domain=((0, 1.9), (0, 1)))
    with pytest.raises(
        CnnlabError, match=r"gives -1 at x=-0\.5, y=0, which is not one of its classes"
    ):
        f.targets(np.array([[-0.5, 0.0]], dtype=np.float32))


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({"n_samples": 1}, r"n_samples must be an integer of at least 2"),
        ({"n_samples": 10.5}, r"n_samples must be an integer"),
        ({"test_fraction": 1.0}, r"test_fraction must lie in \[0, 1\)"),
        ({"n_samples": 2, "test_fraction": 0.9}, r"leaves no training point"),
        ({"noise": -0.1}, r"noise must be a number >= 0"),
        ({"noise": 1.5}, r"fraction of labels to flip"),
        ({"sampling": "sobol"}, r"sampling 'sobol' is not known; use one of uniform, grid"),
        ({"domain": ((1, 0), (0, 1))}, r"domain .* is not valid"),
        ({"domain": (0, 1)}, r"domain .* is not valid"),
    ],
)
def test_make_dataset_refuses(arguments: dict, pattern: str) -> None:
    with pytest.raises(CnnlabError, match=pattern):
        make_dataset("circle", **{"n_samples": 100, **arguments})


def test_grid_sampling_covers_a_lattice() -> None:
    rng = np.random.default_rng(0)
    points = sample_points(25, ((0, 1), (-2, 2)), "grid", rng)
    assert points.shape == (25, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(np.unique(points[:, 0]), np.linspace(0, 1, 5, dtype=np.float32))
    np.testing.assert_array_equal(np.unique(points[:, 1]), np.linspace(-2, 2, 5, dtype=np.float32))
    partial = sample_points(20, ((0, 1), (-2, 2)), "grid", rng)
    assert len(np.unique(partial, axis=0)) == 20


def test_uniform_sampling() -> None:
    points = sample_points(10_000, ((0, 1), (-2, 2)), "uniform", np.random.default_rng(0))
    assert points.shape == (10_000, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points.mean(axis=0), [0.5, 0.0], atol=0.05)


@pytest.mark.parametrize("resolution", [2, 7, 100])
def test_grid_shapes(resolution: int) -> None:
    xx, yy = grid(((-1, 1), (0, 3)), resolution)
    assert xx.shape == yy.shape == (resolution, resolution)
    assert xx.dtype == yy.dtype == np.float32
    assert (xx[0, 0], xx[0, -1], yy[0, 0], yy[-1, 0]) == (-1, 1, 0, 3)
    assert np.all(xx[:, 0] == -1) and np.all(yy[0, :] == 0)  # rows go along y


def test_grid_refuses_a_single_point() -> None:
    with pytest.raises(CnnlabError, match="resolution must be an integer of at least 2"):
        grid(((0, 1), (0, 1)), 1)
