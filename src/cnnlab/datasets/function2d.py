"""Datasets sampled from a function of two variables
(seed 000: "any function learned by a network").

A :class:`Function2D` is a built-in (``ring-band``, ``circle``, ``xor``, ``spiral``,
``checkerboard``, ``sine``) or an expression in ``x`` and ``y`` checked by
:mod:`cnnlab.expressions`. :func:`make_dataset` samples points of its domain and returns
Keras-style ``(x_train, y_train), (x_test, y_test)``::

    from cnnlab.datasets import function2d
    function = function2d.get_function("ring-band")
    (x_train, y_train), (x_test, y_test) = function2d.make_dataset(function)
    # x_*: (n, 2) float32 points; y_*: int64 class indices (or float32 values for regression)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.expressions import Kind, check_finite, compile_expression, expression_kind

__all__ = [
    "BUILTIN_FUNCTIONS",
    "DEFAULT_DOMAIN",
    "Domain",
    "Function2D",
    "get_function",
    "grid",
    "make_dataset",
    "sample_points",
]

Domain = tuple[tuple[float, float], tuple[float, float]]
Sampling = Literal["uniform", "grid"]
Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DEFAULT_DOMAIN: Domain = ((-1.0, 1.0), (-1.0, 1.0))
SEED_DOMAIN: Domain = ((0.0, 1.0), (0.0, 1.0))  # seed 000 draws x and y with np.random.rand
SAMPLINGS = ("uniform", "grid")
PROBE_RESOLUTION = (
    201  # expressions are probed on a 201 x 201 grid to decide their kind and classes
)
SPIRAL_PITCH = 0.5  # radial distance between two turns of the same spiral arm


@dataclass(frozen=True)
class Function2D:
    """A function of ``(x, y)`` to learn, with its kind and the domain it is sampled on.

    ``fn(x, y)`` takes two arrays of the same shape and returns values of that shape.
    For classification, ``classes`` lists the distinct values of ``fn`` in increasing
    order; value ``classes[k]`` becomes label ``k``. ``formula`` is the same function
    written in the expression language of :mod:`cnnlab.expressions`.
    """

    name: str
    description: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    kind: Kind
    domain: Domain
    classes: tuple[float, ...] = ()
    formula: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.classes)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The raw values of the function at the points ``(x, y)``."""
        return np.asarray(self.fn(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)))

    def targets(self, points: np.ndarray) -> np.ndarray:
        """What a network learns at ``points`` (n, 2): int64 labels, or float32 values for
        regression."""
        x, y = points[:, 0], points[:, 1]
        values = self(x, y)
        if self.kind == "regression":
            values = values.astype(np.float32)
            check_finite(values, x, y)
            return values
        return self._labels(values.astype(np.float64), x, y)

    def _labels(self, values: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        classes = np.asarray(self.classes, dtype=np.float64)
        labels = np.minimum(np.searchsorted(classes, values), len(classes) - 1)
        unknown = classes[labels] != values
        if unknown.any():
            i = int(np.argmax(unknown))
            raise CnnlabError(
                f"function '{self.name}' gives {values[i]:g} at x={x[i]:g}, y={y[i]:g}, which is "
                "not one of "
                f"its classes {self.classes} found on its domain {self.domain}; sample inside "
                "that domain "
                "or pass the domain to get_function"
            )
        return labels.astype(np.int64)


# --- built-in functions -------------------------------------------------------------------


def _ring_band(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Seed 000's function, exactly: a ring with a band along the diagonal cut out of it."""
    res1 = np.power(x, 2) + np.power(y, 2) < 1
    res2 = np.power(x, 2) + np.power(y, 2) > 0.5
    res3 = np.absolute(x - y) > 0.15
    return np.logical_and(np.logical_and(res1, res2), res3).astype(np.uint8)


def _circle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x**2 + y**2 < 0.5).astype(np.uint8)


def _xor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * y > 0).astype(np.uint8)


def _spiral(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # the phase grows by one per turn of angle and per SPIRAL_PITCH of radius: its two halves are
    # the arms
    phase = np.arctan2(y, x) / (2 * np.pi) + np.hypot(x, y) / SPIRAL_PITCH
    return (phase % 1.0 < 0.5).astype(np.uint8)


def _checkerboard(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((np.floor(2 * x) + np.floor(2 * y)) % 2 == 0).astype(np.uint8)


def _sine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sin(3 * x) * np.cos(3 * y)


def _builtin(
    name: str,
    description: str,
    formula: str,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    kind: Kind = "classification",
    domain: Domain = DEFAULT_DOMAIN,
) -> Function2D:
    classes = (0.0, 1.0) if kind == "classification" else ()
    return Function2D(name, description, fn, kind, domain, classes, formula)


BUILTIN_FUNCTIONS: dict[str, Function2D] = {
    f.name: f
    for f in (
        _builtin(
            "ring-band",
            "seed 000: a ring with a band along the diagonal cut out, on [0, 1] x [0, 1] as in "
            "the seed",
            "(x**2 + y**2 < 1) & (x**2 + y**2 > 0.5) & (abs(x - y) > 0.15)",
            _ring_band,
            domain=SEED_DOMAIN,
        ),
        _builtin("circle", "inside a circle or not", "x**2 + y**2 < 0.5", _circle),
        _builtin("xor", "x and y of the same sign", "x*y > 0", _xor),
        _builtin(
            "spiral",
            "two interleaved spiral arms",
            "(arctan2(y, x) / (2*pi) + hypot(x, y) / 0.5) % 1 < 0.5",
            _spiral,
        ),
        _builtin(
            "checkerboard", "4 x 4 squares", "(floor(2*x) + floor(2*y)) % 2 == 0", _checkerboard
        ),
        _builtin("sine", "regression: a smooth wave", "sin(3*x) * cos(3*y)", _sine, "regression"),
    )
}


# --- choosing a function ----------------------------------------------------------------


def get_function(name_or_expression: str, domain: Domain | None = None) -> Function2D:
    """A built-in function by name, else an expression in ``x`` and ``y``
    (see :mod:`cnnlab.expressions`).

    ``domain`` overrides the built-in's domain; for an expression it defaults to
    ``DEFAULT_DOMAIN`` = [-1, 1] x [-1, 1]. An expression is probed on a grid of its domain:
    boolean or integer values (at most 20 distinct) make it a classification, others a
    regression. Raises ``CnnlabError`` for unsafe or invalid text, values that are NaN or
    infinite, or a function that is constant on the domain.
    """
    text = name_or_expression.strip()
    if domain is not None:
        domain = _checked_domain(domain)
    if text in BUILTIN_FUNCTIONS:
        builtin = BUILTIN_FUNCTIONS[text]
        return builtin if domain is None else dataclasses.replace(builtin, domain=domain)
    return _expression_function(text, domain or DEFAULT_DOMAIN)


def _expression_function(text: str, domain: Domain) -> Function2D:
    """Compile ``text`` and probe it on a grid of ``domain`` for its kind and classes."""
    try:
        expression = compile_expression(text)
    except CnnlabError as error:
        if re.fullmatch(r"[A-Za-z][\w-]*", text):  # looks like a misspelt built-in name
            names = ", ".join(BUILTIN_FUNCTIONS)
            message = f"unknown function '{text}': use one of {names}, or an expression in x and y"
            raise CnnlabError(message) from error
        raise
    xx, yy = grid(domain, PROBE_RESOLUTION)
    values = expression(xx, yy)
    kind = expression_kind(values, xx, yy)
    distinct = np.unique(values.astype(np.float64))
    if distinct.size < 2:
        message = (
            f"expression '{text}' is {distinct[0]:g} everywhere on the domain {domain}: nothing "
            "to learn"
        )
        raise CnnlabError(message)
    classes = tuple(float(v) for v in distinct) if kind == "classification" else ()
    return Function2D(text, f"the expression {text}", expression, kind, domain, classes, text)


# --- sampling -----------------------------------------------------------------------------


def sample_points(
    n: int, domain: Domain, sampling: Sampling, rng: np.random.Generator
) -> np.ndarray:
    """``n`` points of ``domain`` as an (n, 2) float32 array of ``(x, y)`` rows.

    ``"uniform"`` draws them independently and uniformly. ``"grid"`` takes them from a
    regular ``ceil(sqrt(n))`` x ``ceil(sqrt(n))`` lattice including the domain's corners: the
    whole lattice when ``n`` is a perfect square, else ``n`` of its points chosen at random
    (returned in lattice order).
    """
    (x_low, x_high), (y_low, y_high) = _checked_domain(domain)
    n = _checked_count(n, "n")
    if sampling == "uniform":
        points = rng.uniform((x_low, y_low), (x_high, y_high), size=(n, 2))
    elif sampling == "grid":
        xx, yy = grid(domain, max(2, math.isqrt(n - 1) + 1))
        lattice = np.stack([xx.ravel(), yy.ravel()], axis=1)
        points = lattice[np.sort(rng.choice(len(lattice), size=n, replace=False))]
    else:
        raise CnnlabError(f"sampling '{sampling}' is not known; use one of {', '.join(SAMPLINGS)}")
    return points.astype(np.float32)


def grid(domain: Domain, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``resolution`` x ``resolution`` float32 grid ``(xx, yy)`` over ``domain``, corners
    included.

    As with ``np.meshgrid``, rows go along y and columns along x: ``xx[i, j]`` is the j-th
    x value and ``yy[i, j]`` the i-th y value (for ``imshow(..., origin="lower")``).
    """
    (x_low, x_high), (y_low, y_high) = _checked_domain(domain)
    resolution = _checked_count(resolution, "resolution", minimum=2)
    xs = np.linspace(x_low, x_high, resolution, dtype=np.float32)
    ys = np.linspace(y_low, y_high, resolution, dtype=np.float32)
    return np.meshgrid(xs, ys)


def make_dataset(
    function: Function2D | str,
    n_samples: int = 50_000,
    domain: Domain | None = None,
    sampling: Sampling = "uniform",
    noise: float = 0.0,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Sample ``function`` and split the points: ``((x_train, y_train), (x_test, y_test))``.

    The defaults are seed 000's: 50,000 uniform points, a tenth of them for testing (its
    Keras run then keeps a further tenth of the 45,000 for validation: 40,500 points, 317
    steps per epoch at batch size 128). ``x`` are (n, 2) float32 points; ``y`` are int64
    labels 0..K-1 for classification, float32 values for regression. ``noise`` applies to
    the training targets only, so that the test set measures the true function: for
    classification it is the fraction of labels moved to another class (exactly
    ``round(noise * n_train)`` of them), for regression the std of added gaussian noise.
    The same ``seed`` gives the same arrays.
    """
    if isinstance(function, str):
        function = get_function(function)
    n_samples = _checked_count(n_samples, "n_samples", minimum=2)
    n_test = _test_count(n_samples, test_fraction)
    _check_noise(noise, function)
    rng = np.random.default_rng(seed)
    points = sample_points(n_samples, domain or function.domain, sampling, rng)
    points = points[rng.permutation(n_samples)]
    targets = function.targets(points)
    n_train = n_samples - n_test
    y_train = _add_noise(targets[:n_train], noise, function, rng)
    return (points[:n_train], y_train), (points[n_train:], targets[n_train:])


def _add_noise(
    targets: np.ndarray, noise: float, function: Function2D, rng: np.random.Generator
) -> np.ndarray:
    if noise == 0:
        return targets
    if function.kind == "regression":
        return (targets + rng.normal(0.0, noise, size=targets.shape)).astype(np.float32)
    return _flip_labels(targets, noise, function.num_classes, rng)


def _flip_labels(
    labels: np.ndarray, fraction: float, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """Move exactly ``round(fraction * len(labels))`` labels, chosen at random, to another class."""
    flipped = labels.copy()
    chosen = rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)
    # adding 1..K-1 modulo K gives each other class with equal chance
    flipped[chosen] = (
        labels[chosen] + rng.integers(1, num_classes, size=len(chosen))
    ) % num_classes
    return flipped


# --- argument checks ------------------------------------------------------------------------


def _checked_domain(domain: Domain) -> Domain:
    """``domain`` as float pairs, or ``CnnlabError`` unless it is
    ((x_low, x_high), (y_low, y_high))."""
    try:
        array = np.asarray(domain, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if (
        array.shape != (2, 2)
        or not np.isfinite(array).all()
        or not (array[:, 0] < array[:, 1]).all()
    ):
        expected = "((x_low, x_high), (y_low, y_high)) with low < high"
        raise CnnlabError(f"domain {domain!r} is not valid: give {expected}")
    return ((float(array[0, 0]), float(array[0, 1])), (float(array[1, 0]), float(array[1, 1])))


def _checked_count(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise CnnlabError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def _test_count(n_samples: int, test_fraction: float) -> int:
    """Number of test points, ``round(n_samples * test_fraction)``; at least one point is left to
    train on."""
    if not 0 <= test_fraction < 1:
        raise CnnlabError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
    n_test = round(n_samples * test_fraction)
    if n_test >= n_samples:
        raise CnnlabError(
            f"test_fraction {test_fraction} leaves no training point out of {n_samples}"
        )
    return n_test


def _check_noise(noise: float, function: Function2D) -> None:
    if not (np.isfinite(noise) and noise >= 0):
        raise CnnlabError(f"noise must be a number >= 0, got {noise!r}")
    if function.kind == "classification" and noise > 1:
        message = (
            f"noise is the fraction of labels to flip for '{function.name}': it must lie in [0, "
            f"1], got {noise}"
        )
        raise CnnlabError(message)
