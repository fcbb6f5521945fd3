"""The expression language: hostile and malformed text is refused, the rest matches NumPy."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.expressions import (
    ALLOWED_FUNCTIONS,
    compile_expression,
    evaluate_expression,
    expression_kind,
)

REFUSED = [
    # (text, pattern of the message)
    ("__import__('os')", r"column 1: function '__import__' is not allowed; allowed: abs, sin"),
    ("x.__class__", r"column 1: attribute access 'x\.__class__' is not allowed"),
    ("().__class__", r"attribute access '\(\)\.__class__' is not allowed"),
    ("open('f')", r"function 'open' is not allowed"),
    ("lambda: 1", r"lambda 'lambda: 1' is not allowed"),
    ("[x for x in y]", r"comprehension '\[x for x in y\]' is not allowed"),
    ("'a' * 10**9", r"column 1: text 'a' is not allowed"),
    (
        "10**10**10",
        r"column 5: the exponent '10\*\*10' of '\*\*' is 1e\+10; it must lie in \[-100, 100\]",
    ),
    ("x ** 101", r"exponent '101' .* must lie in \[-100, 100\]"),
    ("x ** y", r"the exponent 'y' of '\*\*' must be a constant"),
    ("(x + 1", r"not valid: unbalanced parentheses .* at column 1"),
    ("x + 1)", r"not valid: unbalanced parentheses .* at column 6"),
    ("[x)", r"not valid: unbalanced parentheses"),
    ("x +", r"not valid: invalid syntax"),
    ("z + 1", r"column 1: unknown name 'z': use x, y, pi, e"),
    ("  z", r"column 3: unknown name 'z'"),
    ("", r"expression is empty"),
    ("   ", r"expression is empty"),
    (
        "x if y else 1",
        r"if-expression 'x if y else 1' is not allowed; use where\(condition, a, b\)",
    ),
    ("(x := 1)", r"column 2: assignment ':=' 'x := 1' is not allowed"),
    ("sin(x, y)", r"function 'sin' takes 1 argument, got 2"),
    ("where(x > 0, x)", r"function 'where' takes 3 arguments, got 2"),
    ("sin(x=1)", r"keyword arguments in 'sin\(x=1\)' are not allowed"),
    ("sin(*x)", r"column 5: unpacking '\*x' is not allowed"),
    ("x[0]", r"indexing 'x\[0\]' is not allowed"),
    ("{x}", r"set '\{x\}' is not allowed"),
    ("{x: 1}", r"dict '\{x: 1\}' is not allowed"),
    ("[x, y]", r"list '\[x, y\]' is not allowed"),
    ("x, y", r"tuple 'x, y' is not allowed"),
    ("f'{x}'", r"f-string 'f'\{x\}'' is not allowed"),
    ("b'x'", r"bytes b'x' is not allowed: only numbers are"),
    ("True", r"literal True is not allowed: only numbers are \(for true/false use a comparison"),
    ("1j", r"literal 1j is not allowed"),
    ("1e300*1e300", r"column 1: number 1e300 is too large"),
    ("10000000000000 * x", r"number 10000000000000 is too large"),
    ("print(x)", r"function 'print' is not allowed"),
    ("globals()", r"function 'globals' is not allowed"),
    ("getattr(x, 'real')", r"function 'getattr' is not allowed"),
    ("x.real", r"attribute access 'x\.real' is not allowed"),
    ("sin.__call__(x)", r"call of 'sin\.__call__' is not allowed"),
    ("x(1)", r"function 'x' is not allowed"),
    ("sin + 1", r"function 'sin' must be called"),
    ("x is y", r"comparison in 'x is y' is not allowed"),
    ("x in y", r"comparison in 'x in y' is not allowed"),
    ("x @ y", r"operator in 'x @ y' is not allowed"),
    ("x << 1", r"operator in 'x << 1' is not allowed"),
    ("x & y", r"column 1: '&' combines true/false values, but 'x' is a number"),
    ("(x > 0) | 1", r"column 11: '\|' combines true/false values, but '1' is a number"),
    ("~x", r"'~' combines true/false values"),
    ("x\0", r"not valid"),
    ("x + " * 150 + "x", r"too long: 601 characters \(at most 500\)"),
    ("-" * 60 + "x", r"nested more than 50 levels deep"),
    ("sin(" * 60 + "x" + ")" * 60, r"nested more than 50 levels deep"),
]


@pytest.mark.parametrize(("text", "pattern"), REFUSED, ids=[text[:30] for text, _ in REFUSED])
def test_refused(text: str, pattern: str) -> None:
    with pytest.raises(CnnlabError, match=pattern):
        compile_expression(text)


def test_refusal_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        compile_expression("__import__('os').system('true')")


def test_no_builtin_evaluation_of_the_text() -> None:
    # the module must never hand user text to Python's own evaluation machinery
    import cnnlab.expressions as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    called = {call.func.id for call in calls if isinstance(call.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


def _sample(seed: int = 0, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.5, 1.5, n), rng.uniform(-1.5, 1.5, n)


ACCEPTED = [
    (
        "(x**2 + y**2 < 1) & (abs(x - y) > 0.15)",
        lambda x, y: (x**2 + y**2 < 1) & (np.abs(x - y) > 0.15),
    ),
    ("sin(3*x) * cos(3*y)", lambda x, y: np.sin(3 * x) * np.cos(3 * y)),
    ("where(x > 0, x, -x)", lambda x, y: np.where(x > 0, x, -x)),
    ("0 < x < 1", lambda x, y: (0 < x) & (x < 1)),
    ("y <= x <= 1 != y", lambda x, y: (y <= x) & (x <= 1) & (1 != y)),
    ("minimum(x, y) + maximum(x, y) * 2", lambda x, y: np.minimum(x, y) + np.maximum(x, y) * 2),
    ("-x**2", lambda x, y: -(x**2)),
    ("x**-2 + 2**0.5", lambda x, y: x**-2.0 + 2**0.5),
    ("not (x > 0)", lambda x, y: ~(x > 0)),
    ("x > 0 and y > 0 or x < -1", lambda x, y: ((x > 0) & (y > 0)) | (x < -1)),
    ("~(x > 0) ^ (y > 0)", lambda x, y: ~(x > 0) ^ (y > 0)),
    ("(x > 0) + (y > 0)", lambda x, y: (x > 0).astype(float) + (y > 0)),
    ("x // 0.5 + x % 0.5 - y / 3", lambda x, y: x // 0.5 + x % 0.5 - y / 3),
    (
        "exp(-x**2) * tanh(y) + log(1 + x**2)",
        lambda x, y: np.exp(-(x**2)) * np.tanh(y) + np.log(1 + x**2),
    ),
    ("sqrt(abs(y)) + tan(y / 2)", lambda x, y: np.sqrt(np.abs(y)) + np.tan(y / 2)),
    ("floor(2*x) + ceil(y) + sign(x)", lambda x, y: np.floor(2 * x) + np.ceil(y) + np.sign(x)),
    (
        "arctan2(y, x) / (2*pi) + hypot(x, y) * e",
        lambda x, y: np.arctan2(y, x) / (2 * np.pi) + np.hypot(x, y) * np.e,
    ),
    (" +x ", lambda x, y: x),
]


@pytest.mark.parametrize(("text", "reference"), ACCEPTED, ids=[text for text, _ in ACCEPTED])
def test_matches_numpy(text: str, reference) -> None:
    x, y = _sample()
    got = evaluate_expression(text, x, y)
    expected = reference(x, y)
    assert got.shape == x.shape
    if expected.dtype == np.bool_:
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, expected)
    else:
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_every_allowed_function_is_exercised() -> None:
    used = {name for text, _ in ACCEPTED for name in ALLOWED_FUNCTIONS if f"{name}(" in text}
    assert used == set(ALLOWED_FUNCTIONS)


def test_constant_gives_a_full_array() -> None:
    xx, yy = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 1, 3))
    values = evaluate_expression("2 * pi", xx, yy)
    assert values.shape == (3, 4)
    assert np.all(values == 2 * np.pi)
    values[0, 0] = 0  # a real array, not a read-only broadcast view


def test_compiled_expression_is_reusable() -> None:
    f = compile_expression("x * y")
    x, y = _sample(1)
    np.testing.assert_array_equal(f(x, y), x * y)
    np.testing.assert_array_equal(f(y, x), x * y)
    assert "x * y" in repr(f)


def test_division_by_zero_gives_infinity_silently() -> None:
    values = evaluate_expression("1 / x", np.array([0.0, 2.0]), np.zeros(2))
    np.testing.assert_array_equal(values, [np.inf, 0.5])


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([True, False]), "classification"),
        (np.array([0.0, 1.0, 2.0, 1.0]), "classification"),
        (np.array([-1, 0, 1]), "classification"),
        (np.arange(20.0), "classification"),
        (np.arange(21.0), "regression"),
        (np.array([0.0, 0.5, 1.0]), "regression"),
        (np.linspace(-1, 1, 100), "regression"),
    ],
)
def test_expression_kind(values: np.ndarray, kind: str) -> None:
    assert expression_kind(values) == kind


def test_kind_of_evaluated_expressions() -> None:
    x, y = _sample(2)
    assert expression_kind(evaluate_expression("x**2 + y**2 < 1", x, y)) == "classification"
    assert expression_kind(evaluate_expression("floor(2*x) + floor(2*y)", x, y)) == "classification"
    assert expression_kind(evaluate_expression("sin(3*x) * cos(3*y)", x, y)) == "regression"


def test_non_finite_values_are_located() -> None:
    x = np.array([1.0, 0.0, -1.0, 2.0])
    y = np.array([5.0, 7.0, 8.0, 9.0])
    values = evaluate_expression("log(x)", x, y)
    pattern = (
        r"NaN or infinity at 2 of 4 points, e\.g\. x=0, y=7; restrict the domain or guard with "
        r"where"
    )
    with pytest.raises(CnnlabError, match=pattern):
        expression_kind(values, x, y)
    with pytest.raises(CnnlabError, match=r"at 2 of 4 points, e\.g\. index \(1,\)"):
        expression_kind(values)
