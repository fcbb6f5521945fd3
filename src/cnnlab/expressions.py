"""Safe 2-variable expressions such as ``(x**2 + y**2 < 1) & (abs(x - y) > 0.15)``.

The text is parsed with :func:`ast.parse` and checked against the explicit whitelists
below; a small interpreter then walks the checked tree over NumPy arrays. Python itself
never runs the text. Semantics, kept deliberately simple:

- numbers are float64 (no integer overflow, no huge integers); comparisons, ``not``,
  ``and``/``or`` and ``~ & | ^`` give booleans;
- booleans used in arithmetic count as 0 and 1, as in Python: ``(x > 0) + (y > 0)``;
- ``~ & | ^`` accept booleans only (``&`` on numbers is a classic precedence slip);
- ``and``/``or``/``not`` work elementwise;
- ``**`` needs a constant exponent in [-100, 100].

Typical use::

    f = compile_expression("sin(3*x) * cos(3*y)")
    values = f(xx, yy)                 # float64 array shaped like xx
    expression_kind(values, xx, yy)    # "regression"
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from cnnlab.errors import CnnlabError

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ALLOWED_NAMES",
    "Expression",
    "Kind",
    "check_finite",
    "compile_expression",
    "evaluate_expression",
    "expression_kind",
]

Kind = Literal["classification", "regression"]

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_LITERAL = 1e12
MAX_EXPONENT = 100
MAX_CLASSES = 20

ALLOWED_NAMES: dict[str, float | None] = {"x": None, "y": None, "pi": np.pi, "e": np.e}
VARIABLES = ("x", "y")

# name -> (NumPy function, number of positional arguments)
ALLOWED_FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], int]] = {
    "abs": (np.abs, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "sqrt": (np.sqrt, 1),
    "tanh": (np.tanh, 1),
    "floor": (np.floor, 1),
    "ceil": (np.ceil, 1),
    "sign": (np.sign, 1),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
    "arctan2": (np.arctan2, 2),
    "hypot": (np.hypot, 2),
    "where": (np.where, 3),
}

ARITHMETIC_OPERATORS: dict[type[ast.operator], Callable[..., np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
LOGICAL_OPERATORS: dict[type[ast.operator], Callable[..., np.ndarray]] = {
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
    ast.BitXor: np.logical_xor,
}
BOOLEAN_OPERATORS: dict[type[ast.boolop], Callable[..., np.ndarray]] = {
    ast.And: np.logical_and,
    ast.Or: np.logical_or,
}
COMPARISONS: dict[type[ast.cmpop], Callable[..., np.ndarray]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
# Constructs refused outright, with the words used to name them (and a hint where useful).
REFUSED_CONSTRUCTS: dict[type[ast.expr], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Slice: "slicing",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator",
    ast.IfExp: "if-expression",
    ast.NamedExpr: "assignment ':='",
    ast.Starred: "unpacking",
    ast.Tuple: "tuple",
    ast.List: "list",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

REFUSAL_HINTS: dict[type[ast.expr], str] = {ast.IfExp: "; use where(condition, a, b)"}

UNBALANCED_HINTS = ("was never closed", "unmatched", "does not match")


class Expression:
    """A checked expression in ``x`` and ``y``; call it with two arrays to get its values.

    Build it with :func:`compile_expression`. ``expression(x, y)`` returns a float64 (or
    boolean) array with the broadcast shape of ``x`` and ``y``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._lead = len(text) - len(text.lstrip())
        self._source = text.strip()
        self._tree = _parse(text, self._source, self._lead).body
        _check_depth(self._tree, self)
        _check(self._tree, self)
        self(np.zeros(1), np.zeros(1))  # types depend on the tree only: refuse '&' on numbers now

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        environment = {**_named_constants(), "x": x, "y": y}
        with np.errstate(all="ignore"):
            result = _evaluate(self._tree, environment, self)
        return np.array(np.broadcast_to(result, np.broadcast_shapes(x.shape, y.shape)))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def segment(self, node: ast.AST) -> str:
        """The source text of ``node``."""
        return ast.get_source_segment(self._source, node) or type(node).__name__

    def refusal(self, node: ast.expr, reason: str) -> CnnlabError:
        """An error naming the column of ``node`` (1-based, in the text as given) and the reason."""
        column = node.col_offset + 1 + self._lead
        return CnnlabError(f"expression refused at column {column}: {reason}")


def compile_expression(text: str) -> Expression:
    """Parse and check ``text``; return a callable ``f(x, y) -> np.ndarray``.

    Raises ``CnnlabError`` naming the offending part and its column for anything outside
    the whitelist (see the module docstring), for syntax errors and for empty text.
    """
    if not isinstance(text, str):
        raise CnnlabError(f"expression must be text, got {type(text).__name__}")
    return Expression(text)


def evaluate_expression(text: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of the expression ``text`` at the points ``(x, y)``, shaped like ``x`` and ``y``
    broadcast."""
    return compile_expression(text)(x, y)


def expression_kind(
    values: np.ndarray, x: np.ndarray | None = None, y: np.ndarray | None = None
) -> Kind:
    """``"classification"`` for boolean or integer values with at most 20 distinct, else
    ``"regression"``.

    Non-finite values raise ``CnnlabError``; pass the points ``x`` and ``y`` to have the
    message name one of them.
    """
    values = np.asarray(values)
    if values.dtype == np.bool_:
        return "classification"
    check_finite(values, x, y)
    integral = np.issubdtype(values.dtype, np.integer) or np.array_equal(values, np.round(values))
    if integral and np.unique(values).size <= MAX_CLASSES:
        return "classification"
    return "regression"


def check_finite(
    values: np.ndarray, x: np.ndarray | None = None, y: np.ndarray | None = None
) -> None:
    """Raise ``CnnlabError`` saying how many values are NaN or infinite and where the first one
    is."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.inexact):
        return
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    first = np.unravel_index(int(np.argmax(bad)), bad.shape)
    if x is not None and y is not None:
        x, y, _ = np.broadcast_arrays(np.asarray(x), np.asarray(y), values)
        where = f"x={float(x[first]):g}, y={float(y[first]):g}"
    else:
        where = f"index {tuple(int(i) for i in first)}"
    raise CnnlabError(
        f"the expression gives NaN or infinity at {int(bad.sum())} of {bad.size} points, e.g. "
        f"{where}; "
        "restrict the domain or guard with where(...)"
    )


# --- parsing and checking ------------------------------------------------------------


def _parse(text: str, source: str, lead: int) -> ast.Expression:
    """``ast.parse`` in eval mode, after the length and emptiness checks."""
    if not source:
        raise CnnlabError("expression is empty: write a formula in x and y, e.g. 'x**2 + y**2 < 1'")
    if len(text) > MAX_LENGTH:
        raise CnnlabError(f"expression is too long: {len(text)} characters (at most {MAX_LENGTH})")
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise CnnlabError(_syntax_message(error, lead)) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise CnnlabError(f"expression is not valid: {error}") from None


def _syntax_message(error: SyntaxError, lead: int) -> str:
    """Python's message with the column, or 'unbalanced parentheses' for bracket faults."""
    message = error.msg
    if any(hint in message for hint in UNBALANCED_HINTS):
        message = f"unbalanced parentheses ({message})"
    if error.offset is None:
        return f"expression is not valid: {message}"
    return f"expression is not valid: {message} at column {max(error.offset, 1) + lead}"


def _check_depth(tree: ast.expr, expression: Expression) -> None:
    """Refuse trees nested deeper than ``MAX_DEPTH`` (walked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise expression.refusal(
                node, f"expression is nested more than {MAX_DEPTH} levels deep"
            )
        children = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
        stack.extend((child, depth + 1) for child in children)


def _check(node: ast.expr, expression: Expression) -> None:
    """Raise ``CnnlabError`` unless ``node`` and everything under it is on the whitelist."""
    checker = _CHECKERS.get(type(node))
    if checker is None:
        raise expression.refusal(node, _refused_reason(node, expression))
    checker(node, expression)


def _refused_reason(node: ast.expr, expression: Expression) -> str:
    what = REFUSED_CONSTRUCTS.get(type(node), type(node).__name__)
    return f"{what} '{expression.segment(node)}' is not allowed{REFUSAL_HINTS.get(type(node), '')}"


def _check_constant(node: ast.Constant, expression: Expression) -> None:
    value = node.value
    if type(value) not in (int, float):
        kind = {str: "text", bytes: "bytes"}.get(type(value), "literal")
        hint = " (for true/false use a comparison such as x > 0)" if isinstance(value, bool) else ""
        reason = f"{kind} {expression.segment(node)} is not allowed: only numbers are{hint}"
        raise expression.refusal(node, reason)
    if not abs(value) <= MAX_LITERAL:
        reason = f"number {expression.segment(node)} is too large (at most {MAX_LITERAL:g})"
        raise expression.refusal(node, reason)


def _check_name(node: ast.Name, expression: Expression) -> None:
    if node.id in ALLOWED_FUNCTIONS:
        raise expression.refusal(node, f"function '{node.id}' must be called, e.g. {node.id}(x)")
    if node.id not in ALLOWED_NAMES:
        raise expression.refusal(node, f"unknown name '{node.id}': use {', '.join(ALLOWED_NAMES)}")


def _check_unary(node: ast.UnaryOp, expression: Expression) -> None:
    _check(node.operand, expression)


def _check_binary(node: ast.BinOp, expression: Expression) -> None:
    if type(node.op) not in ARITHMETIC_OPERATORS and type(node.op) not in LOGICAL_OPERATORS:
        reason = (
            f"operator in '{expression.segment(node)}' is not allowed; allowed: + - * / // % ** & "
            "| ^"
        )
        raise expression.refusal(node, reason)
    _check(node.left, expression)
    _check(node.right, expression)
    if isinstance(node.op, ast.Pow):
        _check_exponent(node.right, expression)


def _check_exponent(node: ast.expr, expression: Expression) -> None:
    """The exponent of ``**`` must be a constant in [-MAX_EXPONENT, MAX_EXPONENT]."""
    text = expression.segment(node)
    if any(isinstance(child, ast.Name) and child.id in VARIABLES for child in ast.walk(node)):
        reason = (
            f"the exponent '{text}' of '**' must be a constant; for a variable power use exp(b * "
            "log(a))"
        )
        raise expression.refusal(node, reason)
    with np.errstate(all="ignore"):
        value = float(_evaluate(node, _named_constants(), expression))
    if not abs(value) <= MAX_EXPONENT:
        reason = (
            f"the exponent '{text}' of '**' is {value:g}; it must lie in [{-MAX_EXPONENT}, "
            f"{MAX_EXPONENT}]"
        )
        raise expression.refusal(node, reason)


def _check_boolean_operation(node: ast.BoolOp, expression: Expression) -> None:
    for value in node.values:
        _check(value, expression)


def _check_comparison(node: ast.Compare, expression: Expression) -> None:
    for operator in node.ops:
        if type(operator) not in COMPARISONS:
            reason = (
                f"comparison in '{expression.segment(node)}' is not allowed; use < <= > >= == !="
            )
            raise expression.refusal(node, reason)
    for operand in (node.left, *node.comparators):
        _check(operand, expression)


def _check_call(node: ast.Call, expression: Expression) -> None:
    allowed = ", ".join(ALLOWED_FUNCTIONS)
    if not isinstance(node.func, ast.Name):
        reason = (
            f"call of '{expression.segment(node.func)}' is not allowed; call one of {allowed} by "
            "name"
        )
        raise expression.refusal(node, reason)
    name = node.func.id
    if name not in ALLOWED_FUNCTIONS:
        raise expression.refusal(node, f"function '{name}' is not allowed; allowed: {allowed}")
    if node.keywords:
        raise expression.refusal(
            node, f"keyword arguments in '{expression.segment(node)}' are not allowed"
        )
    arity = ALLOWED_FUNCTIONS[name][1]
    if len(node.args) != arity:
        arguments = "argument" if arity == 1 else "arguments"
        raise expression.refusal(
            node, f"function '{name}' takes {arity} {arguments}, got {len(node.args)}"
        )
    for argument in node.args:
        _check(argument, expression)


_CHECKERS: dict[type[ast.expr], Callable[[Any, Expression], None]] = {
    ast.Constant: _check_constant,
    ast.Name: _check_name,
    ast.UnaryOp: _check_unary,
    ast.BinOp: _check_binary,
    ast.BoolOp: _check_boolean_operation,
    ast.Compare: _check_comparison,
    ast.Call: _check_call,
}


# --- the interpreter ---------------------------------------------------------------------


def _evaluate(
    node: ast.expr, environment: dict[str, np.ndarray], expression: Expression
) -> np.ndarray:
    """Value of a checked tree; ``environment`` maps the allowed names to arrays."""
    return _EVALUATORS[type(node)](node, environment, expression)


def _named_constants() -> dict[str, np.ndarray]:
    """The environment without the variables: ``pi`` and ``e``."""
    return {name: np.float64(value) for name, value in ALLOWED_NAMES.items() if value is not None}


def _numeric(value: np.ndarray) -> np.ndarray:
    """Booleans count as 0 and 1 in arithmetic, as in Python."""
    value = np.asarray(value)
    return value.astype(np.float64) if value.dtype == np.bool_ else value


def _boolean(
    value: np.ndarray, node: ast.expr, operator: str, expression: Expression
) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype != np.bool_:
        reason = (
            f"'{operator}' combines true/false values, but '{expression.segment(node)}' is a "
            "number; "
            "use comparisons, e.g. (x > 0) & (y > 0)"
        )
        raise expression.refusal(node, reason)
    return value


def _evaluate_constant(node: ast.Constant, environment: dict, expression: Expression) -> np.ndarray:
    return np.float64(node.value)


def _evaluate_name(node: ast.Name, environment: dict, expression: Expression) -> np.ndarray:
    return environment[node.id]


def _evaluate_unary(node: ast.UnaryOp, environment: dict, expression: Expression) -> np.ndarray:
    operand = _evaluate(node.operand, environment, expression)
    if isinstance(node.op, ast.USub):
        return np.negative(_numeric(operand))
    if isinstance(node.op, ast.UAdd):
        return _numeric(operand)
    if isinstance(node.op, ast.Invert):
        operand = _boolean(operand, node.operand, "~", expression)
    return np.logical_not(operand)


def _evaluate_binary(node: ast.BinOp, environment: dict, expression: Expression) -> np.ndarray:
    left = _evaluate(node.left, environment, expression)
    right = _evaluate(node.right, environment, expression)
    operator = type(node.op)
    if operator in ARITHMETIC_OPERATORS:
        return ARITHMETIC_OPERATORS[operator](_numeric(left), _numeric(right))
    symbol = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}[operator]
    left = _boolean(left, node.left, symbol, expression)
    right = _boolean(right, node.right, symbol, expression)
    return LOGICAL_OPERATORS[operator](left, right)


def _evaluate_boolean_operation(
    node: ast.BoolOp, environment: dict, expression: Expression
) -> np.ndarray:
    values = [_evaluate(value, environment, expression) for value in node.values]
    return functools.reduce(BOOLEAN_OPERATORS[type(node.op)], values)


def _evaluate_comparison(
    node: ast.Compare, environment: dict, expression: Expression
) -> np.ndarray:
    # a < b < c means (a < b) and (b < c), each operand computed once
    operands = [_numeric(_evaluate(node.left, environment, expression))]
    operands += [
        _numeric(_evaluate(operand, environment, expression)) for operand in node.comparators
    ]
    results = [
        COMPARISONS[type(op)](a, b)
        for op, a, b in zip(node.ops, operands[:-1], operands[1:], strict=True)
    ]
    return functools.reduce(np.logical_and, results)


def _evaluate_call(node: ast.Call, environment: dict, expression: Expression) -> np.ndarray:
    function = ALLOWED_FUNCTIONS[node.func.id][0]
    arguments = [_evaluate(argument, environment, expression) for argument in node.args]
    if function is np.where:
        return np.where(arguments[0], _numeric(arguments[1]), _numeric(arguments[2]))
    return function(*(_numeric(argument) for argument in arguments))


_EVALUATORS: dict[type[ast.expr], Callable[[Any, dict, Expression], np.ndarray]] = {
    ast.Constant: _evaluate_constant,
    ast.Name: _evaluate_name,
    ast.UnaryOp: _evaluate_unary,
    ast.BinOp: _evaluate_binary,
    ast.BoolOp: _evaluate_boolean_operation,
    ast.Compare: _evaluate_comparison,
    ast.Call: _evaluate_call,
}
