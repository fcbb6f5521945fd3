"""``cnnlab run PROGRAM.py``: an unmodified Keras / tf.keras program, run on a chosen Keras.

An import hook (a ``sys.meta_path`` finder placed first) answers the program's imports:

- ``keras``, ``keras.*``, ``tensorflow.keras``, ``tensorflow.keras.*``, ``tensorflow.python.keras``
  -> the target's Keras package, the *same* module objects
  (``keras.layers is tensorflow.keras.layers``);
- ``tensorflow`` -> a stand-in (``cnnlab.keras.tf_standin``) whose ``keras`` is that package;
  any other ``tensorflow.X`` fails with one line.

Two targets: ``numpy`` (``cnnlab.keras`` on the NumPy engine) and ``keras`` (real Keras 3 on
its torch backend, the oracle; ``tensorflow.keras`` then means ``keras`` itself, except
``keras.datasets``, which stays cnnlab's: both read the same files, offline). The program
runs as ``__main__`` with its own ``sys.argv``, its directory first on ``sys.path``, Python's
default warning filters, its own exit code and its own traceback; an ``UnsupportedKerasFeature``
prints as one line and exits 2. Everything the hook changed in ``sys.modules``, ``sys.meta_path``,
``sys.path`` and ``sys.argv`` is put back afterwards (tests run several programs in one process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import runpy
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.errors import CnnlabError

ENGINES = ("numpy", "keras")
KERAS_PREFIXES = ("tensorflow.python.keras", "tensorflow.keras", "keras")  # longest first
PYTHON_WARNING_FILTERS = (  # what `python PROGRAM.py` starts with (the warnings module's defaults)
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


@dataclasses.dataclass(frozen=True)
class Target:
    """Where ``keras`` imports lead: ``package`` (``cnnlab.keras`` or ``keras``) and how to say
    so."""

    engine: str
    package: str

    def describe(self, keras: ModuleType) -> str:
        if self.engine == "numpy":
            return "the cnnlab NumPy engine (keras -> cnnlab.keras)"
        backend = keras.backend.backend()
        return f"Keras {keras.__version__} on its {backend} backend (tensorflow.keras -> keras)"


def target_for(engine: str) -> Target:
    """The target of ``--engine numpy|keras``."""
    if engine not in ENGINES:
        raise CnnlabError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return Target(engine, "cnnlab.keras" if engine == "numpy" else "keras")


def import_target(target: Target) -> ModuleType:
    """The target's Keras package
    (real Keras with the torch backend unless KERAS_BACKEND says otherwise)."""
    if target.package == "keras":
        from cnnlab.reference.keras import import_keras, keras_available

        if not keras_available():
            raise CnnlabError(
                "--engine keras needs Keras 3, which is not installed (pip install keras torch)"
            )
        return import_keras()
    return importlib.import_module(target.package)


class KerasImportHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Maps keras / tensorflow.keras imports onto ``target.package`` and ``tensorflow`` onto the
    stand-in."""

    def __init__(self, target: Target, tensorflow: ModuleType) -> None:
        self.target, self.tensorflow = target, tensorflow

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self.alias_of(fullname) is None and fullname.split(".")[0] != "tensorflow":
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def alias_of(self, fullname: str) -> str | None:
        """The module a keras name stands for
        (``tensorflow.keras.layers`` -> ``cnnlab.keras.layers``)."""
        for prefix in KERAS_PREFIXES:
            if fullname == prefix or fullname.startswith(prefix + "."):
                rest = fullname[len(prefix) :]
                if is_datasets(rest):
                    return "cnnlab.keras" + rest  # every engine reads the same files
                if prefix == "keras" and self.target.package == "keras":
                    return None  # real Keras imports itself
                return self.target.package + rest
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        if spec.name == "tensorflow":
            return self.tensorflow
        if spec.name == "tensorflow.python":
            return self.tensorflow_python()
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Put the aliased module itself in ``sys.modules``
        (the import system returns what is there)."""
        name = module.__name__
        if name in ("tensorflow", "tensorflow.python"):
            return
        alias = self.alias_of(name)
        if alias is None:
            from cnnlab.keras.tf_standin import not_tensorflow

            raise not_tensorflow(name.replace("tensorflow", "tf", 1))
        sys.modules[name] = import_alias(alias, name)

    def tensorflow_python(self) -> ModuleType:
        from cnnlab.keras.tf_standin import namespace

        return namespace("tensorflow.python", {"keras": self.tensorflow.keras})


def import_alias(alias: str, name: str) -> ModuleType:
    """``import alias``; a missing ``cnnlab.keras`` module is a Keras feature cnnlab does not
    have."""
    try:
        return importlib.import_module(alias)
    except ModuleNotFoundError as err:
        if (
            not alias.startswith("cnnlab.keras")
            or err.name is None
            or not err.name.startswith("cnnlab.keras")
        ):
            raise
        from cnnlab.keras.namespace import submodule_names

        parent = sys.modules[alias.rpartition(".")[0]]
        supported = ", ".join(submodule_names(parent)) or "none"
        message = f"{name} is not supported by cnnlab; supported modules there: {supported}"
        raise UnsupportedKerasFeature(message) from None


def is_datasets(rest: str) -> bool:
    """``.datasets`` or ``.datasets.mnist``: the part of a keras module name after ``keras``."""
    return rest == ".datasets" or rest.startswith(".datasets.")


def hooked(name: str, target: Target) -> bool:
    """Whether the hook answers imports of ``name``
    (then any copy already imported is set aside)."""
    top, _, rest = name.partition(".")
    return top == "tensorflow" or (
        top == "keras" and (target.package != "keras" or is_datasets("." + rest))
    )


@contextlib.contextmanager
def shared_datasets(keras: ModuleType, target: Target) -> Iterator[None]:
    """On real Keras, ``keras.datasets`` reads cnnlab's data directory too
    (the same data, no download), and Keras's internal TensorFlow probe keeps saying "not installed"
    beside the program's stand-in."""
    if target.package != "keras":
        yield
        return
    from keras.src.utils import (
        module_utils,  # Keras's own "is TensorFlow installed?" probe
    )

    saved = keras.datasets, module_utils.tensorflow._available
    keras.datasets = importlib.import_module("cnnlab.keras.datasets")
    module_utils.tensorflow._available = False  # the program's stand-in is not TensorFlow to Keras
    try:
        yield
    finally:
        keras.datasets, module_utils.tensorflow._available = saved


@contextlib.contextmanager
def keras_imports(engine: str = "numpy") -> Iterator[ModuleType]:
    """Within the block, ``import keras`` / ``tensorflow`` resolve to the target; yields its Keras
    package."""
    target = target_for(engine)
    keras = import_target(target)
    from cnnlab.keras.tf_standin import make_tensorflow

    hook = KerasImportHook(target, make_tensorflow(keras))
    set_aside = {name: module for name, module in sys.modules.items() if hooked(name, target)}
    for name in set_aside:
        del sys.modules[name]
    sys.meta_path.insert(0, hook)
    try:
        with shared_datasets(keras, target):
            yield keras
    finally:
        sys.meta_path.remove(hook)
        for name in [name for name in sys.modules if hooked(name, target)]:
            del sys.modules[name]
        sys.modules.update(set_aside)


@contextlib.contextmanager
def program_context(program: Path, args: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` = [PROGRAM, *ARGS], the program's folder first on ``sys.path``, Python's default
    warning filters
    (the program's warnings are its own, shown as ``python PROGRAM.py`` shows them)."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(program), *args]
    sys.path.insert(0, str(program.resolve().parent))
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            warnings.showwarning = (
                show_warning  # to stderr, even where a caller (pytest) records warnings
            )
            for action, category, module in PYTHON_WARNING_FILTERS:
                warnings.filterwarnings(action, category=category, module=module, append=True)
            yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Print a warning as Python prints a script's warnings."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def check_program(program: str | Path) -> Path:
    """The program's path, or one line saying why it cannot be run."""
    path = Path(program)
    if path.suffix != ".py":
        raise CnnlabError(f"{program}: not a Python program; cnnlab run takes a .py file")
    if not path.is_file():
        raise CnnlabError(f"{program}: file not found")
    return path


def run_program(program: str | Path, args: Sequence[str] = (), engine: str = "numpy") -> int:
    """Run a Keras program as ``__main__`` on the engine; returns its exit code.

    0 when it ends normally, its own code for ``sys.exit``, 1 after an exception (its traceback
    printed, starting at the program's own frame), 2 for a Keras feature cnnlab does not have.
    """
    path = check_program(program)
    with keras_imports(engine) as keras, program_context(path, args):
        # layer names start again at conv2d, dense, ... as in a new process
        keras.backend.clear_session()
        print(
            f"cnnlab: running {program} on {target_for(engine).describe(keras)}",
            file=sys.stderr,
            flush=True,
        )
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exit_:
            return exit_code(exit_)
        except UnsupportedKerasFeature as err:
            print(f"cnnlab: {err}", file=sys.stderr)
            return 2
        except Exception as err:  # noqa: BLE001 - the program's own error: its traceback, as Python prints it
            traceback.print_exception(type(err), err, program_frames(err.__traceback__, path))
            return 1
    return 0


def exit_code(exit_: SystemExit) -> int:
    """Python's rule: None -> 0, an int -> itself, anything else printed to stderr -> 1."""
    if exit_.code is None or isinstance(exit_.code, int):
        return int(exit_.code or 0)
    print(exit_.code, file=sys.stderr)
    return 1


def program_frames(tb: TracebackType | None, program: Path) -> TracebackType | None:
    """The traceback from the program's first frame on (runpy's and cnnlab's frames dropped)."""
    start = tb
    while (
        start is not None and Path(start.tb_frame.f_code.co_filename).resolve() != program.resolve()
    ):
        start = start.tb_next
    return start  # None when the program never ran (a SyntaxError names its own line)
