"""How each ``cnnlab.keras`` module finds its names: in the engine, at attribute access.

A module of the namespace holds no list of its own. It names a *resolver*, a function that
returns ``{keras_name: engine_object}`` from the engine's registries and modules as they are
now (a layer registered after ``cnnlab.keras.layers`` was imported still appears), and calls
:func:`keras_module` to get its ``__getattr__`` and ``__dir__`` (PEP 562)::

    __getattr__, __dir__ = keras_module(__name__, "keras.layers", resolve_layers, "layers")

A name the engine does not have fails with one line, an ``UnsupportedKerasFeature`` naming it
and what is supported (``from keras.layers import LSTM``). Dunder names (``__all__`` aside)
raise ``AttributeError`` as usual, so ``hasattr``, ``inspect`` and copy/pickle probes work.
A submodule of the package (``keras.layers.core``) is imported on first access.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cnnlab.engine.errors import UnsupportedKerasFeature

Resolver = Callable[[], dict[str, Any]]


def keras_module(
    module_name: str, keras_path: str, resolve: Resolver, what: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the cnnlab module ``module_name`` that plays
    ``keras_path``.

    ``resolve()`` gives the names at the moment of access; ``what`` is how the error names
    them ("layers", "optimizers").
    """

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            return sorted(resolve())
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        submodule = import_submodule(module_name, name)
        if submodule is not None:
            return submodule
        names = resolve()
        if name in names:
            return names[name]
        raise unsupported(
            f"{keras_path}.{name}", what, names, submodule_names(sys.modules[module_name])
        )

    def __dir__() -> list[str]:
        return sorted({*resolve(), *submodule_names(sys.modules[module_name])})

    return __getattr__, __dir__


def unsupported(
    full_name: str, what: str, names: dict[str, Any] | list[str], modules: list[str] | None = None
) -> UnsupportedKerasFeature:
    """The one-line error for a Keras name that cnnlab does not have."""
    supported = ", ".join(sorted(names)) or "none"
    there = f"; modules: {', '.join(sorted(modules))}" if modules else ""
    return UnsupportedKerasFeature(
        f"{full_name} is not supported by cnnlab; supported {what}: {supported}{there}"
    )


INTERNAL_MODULES = {"namespace", "tf_standin"}  # cnnlab.keras's own machinery, no Keras module


def submodule_names(module: ModuleType) -> list[str]:
    """The Keras modules of a package (``cnnlab.keras.layers`` -> core, convolutional, pooling)."""
    path = getattr(module, "__path__", None)
    return (
        [info.name for info in pkgutil.iter_modules(path) if info.name not in INTERNAL_MODULES]
        if path
        else []
    )


def import_submodule(module_name: str, name: str) -> ModuleType | None:
    """``module_name.name`` when it is a module of that package, else None."""
    if name in submodule_names(sys.modules[module_name]):
        return importlib.import_module(f"{module_name}.{name}")
    return None


def public_api(module: ModuleType, base: type | None = None) -> dict[str, Any]:
    """What an engine module offers Keras programs.

    Its ``__all__`` when it declares one; otherwise its public classes derived from ``base``,
    its ``get``, and the functions its tables hold (``LOSS_FUNCTIONS = {mse: MeanSquaredError}``).
    """
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return {name: getattr(module, name) for name in declared}
    names: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and base is not None and issubclass(value, base):
            names[name] = value
        elif isinstance(value, dict):
            names.update(table_functions(module, value))
    if callable(getattr(module, "get", None)):
        names["get"] = module.get
    return names


def table_functions(module: ModuleType, table: dict[Any, Any]) -> dict[str, Any]:
    """The functions of ``module`` found among a name table's keys or values, by their own name."""
    return {
        f.__name__: f
        for f in (*table, *table.values())
        if inspect.isfunction(f) and f.__module__ == module.__name__
    }


def optional_module(name: str) -> ModuleType | None:
    """An engine module that another helper may not have written yet (``cnnlab.engine.metrics``)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None
