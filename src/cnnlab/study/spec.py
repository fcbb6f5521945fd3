"""The study spec: a TOML file naming a base model, training settings and the axes to vary.

```toml
name = "pool-study"
model = "seed-cnn"            # a built-in model or a model file (relative to this file)
mode = "random"               # "grid": every combination; "random": n_trials of them
n_trials = 12
repeats = 2                   # seeds per configuration: seed, seed + 1, ...
seed = 0                      # first trial seed, and the seed of the random sampling

[training]                    # cnnlab.training.TrainSettings fields
dataset = "mnist"
epochs = 2
train_size = 3000

[fixed]                       # the same change in every trial
"conv2d_1.filters" = 32

[axes]                        # "layer.argument" = [values]
"max_pooling2d.pool_size" = [2, 3, 4]
"conv2d,conv2d_1.padding" = ["valid", { conv2d = "same" }, "same"]
```

An axis address is ``LAYERS.ARGUMENT``. ``LAYERS`` is a layer name, several names joined
by commas, or a shell-style pattern (``*`` every layer that takes the argument,
``conv2d*`` both convolutions). A value is given to every addressed layer, except a table
value (``{ conv2d = "same" }``), which sets the layers it names and leaves the others as
they are. Every address, argument and value is checked before anything runs; a mistake is
reported with the line of the file that holds it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..engine import limits
from ..engine.layers import LAYER_CLASSES, deserialize
from ..errors import CnnlabError
from ..training import TrainSettings

MODES = ("grid", "random")
TOP_LEVEL_KEYS = (
    "name",
    "description",
    "model",
    "mode",
    "n_trials",
    "repeats",
    "seed",
    "training",
    "fixed",
    "axes",
)
TRAINING_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,),
    "epochs": (int,),
    "batch_size": (int,),
    "optimizer": (str,),
    "learning_rate": (int, float),
    "validation_split": (int, float),
    "engine": (str,),
    "train_size": (int,),
    "test_size": (int,),
}
NOT_AN_AXIS_ARGUMENT = ("self", "name", "input_shape", "kwargs", "shape", "batch_shape", "dtype")
PLACEHOLDER_SHAPE, PLACEHOLDER_CLASSES = (28, 28, 1), 10
MAX_GRID_TRIALS = limits.DEFAULTS["CNNLAB_MAX_TRIALS"]  # CNNLAB_MAX_TRIALS changes it
Value = Any


@dataclass(frozen=True)
class Axis:
    """One varied (or fixed) argument: ``address`` as written, the layers it sets, its values."""

    address: str
    layers: tuple[str, ...]
    argument: str
    values: tuple[Value, ...]

    def changes(self, value: Value) -> dict[str, Value]:
        """{layer name: new argument value} for one of the axis' values."""
        if isinstance(value, dict):
            return dict(value)
        return {layer: value for layer in self.layers}


@dataclass
class StudySpec:
    """A parsed, checked study spec (see the module docstring for the file format)."""

    name: str
    model: str
    training: dict[str, Any]
    axes: list[Axis]
    fixed: list[tuple[Axis, Value]] = field(default_factory=list)
    mode: str = "grid"
    n_trials: int | None = None
    repeats: int = 1
    seed: int = 0
    description: str = ""
    source: str = ""
    text: str = ""

    def settings(self, seed: int = 0, data_dir: str | None = None) -> TrainSettings:
        """The training settings of one trial."""
        return TrainSettings(model=self.model, seed=seed, data_dir=data_dir, **self.training)

    def grid_size(self) -> int:
        return (
            int(np.prod([len(axis.values) for axis in self.axes], dtype=object)) if self.axes else 1
        )

    def fingerprint(self) -> str:
        """A hash of everything that decides each trial's result. Not n_trials: a random study may
        grow (its first configurations stay the same), nor the name, description or comments."""
        content = {
            "model": self.model_identity(),
            "training": self.training,
            "mode": self.mode,
            "repeats": self.repeats,
            "seed": self.seed,
            "fixed": [[a.address, list(a.layers), a.argument, v] for a, v in self.fixed],
            "axes": [[a.address, list(a.layers), a.argument, list(a.values)] for a in self.axes],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def model_identity(self) -> str:
        """A built-in's name, or a hash of the model file's content (so the folder may move)."""
        if self.model in models.BUILTIN_MODELS:
            return self.model
        return "sha256:" + hashlib.sha256(limits.read_file(self.model)).hexdigest()

    def summary(self) -> dict[str, Any]:
        """A JSON-able description, stored with the study and shown in its report."""
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "mode": self.mode,
            "n_trials": self.n_trials,
            "repeats": self.repeats,
            "seed": self.seed,
            "training": self.training,
            "fixed": {a.address: v for a, v in self.fixed},
            "axes": {a.address: list(a.values) for a in self.axes},
            "source": self.source,
        }


# --------------------------------------------------------------------------- finding lines


def find_line(text: str, table: str | None, key: str | None = None) -> int | None:
    """The 1-based line of ``key`` inside ``[table]`` (or of the ``[table]`` header itself)."""
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\[\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip().strip("\"'")
            if key is None and current == table:
                return number
            continue
        if key is not None and current == table and _line_sets_key(line, key):
            return number
        if (
            key is not None
            and current is None
            and table
            and _line_sets_key(line, f"{table}.{_quoted(key)}")
        ):
            return number
    return None


def _quoted(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def _line_sets_key(line: str, key: str) -> bool:
    """Whether a TOML line assigns ``key`` (bare, "double" or 'single' quoted)."""
    for spelled in (key, f'"{key}"', f"'{key}'", _quoted(key)):
        if line.startswith(spelled) and re.match(r"\s*=", line[len(spelled) :]):
            return True
    return False


class SpecReader:
    """Turns the TOML text into a StudySpec, raising CnnlabError with the line at fault."""

    def __init__(self, text: str, source: str, base_dir: Path) -> None:
        self.text, self.source, self.base_dir = text, source, base_dir

    def fail(self, message: str, table: str | None = None, key: str | None = None) -> CnnlabError:
        line = find_line(self.text, table, key) or (find_line(self.text, table) if table else None)
        where = f"{self.source}, line {line}" if line else self.source
        return CnnlabError(f"{where}: {message}")

    def parse(self) -> StudySpec:
        document = self.load_toml()
        for key in document:
            if key not in TOP_LEVEL_KEYS:
                raise self.fail(
                    f"unknown setting {key!r}; a study spec has {', '.join(TOP_LEVEL_KEYS)}",
                    None,
                    key,
                )
        model = self.model_name(document)
        layers = self.model_layers(model)
        spec = StudySpec(
            name=self.typed(document, "name", str, Path(self.source).stem),
            model=model,
            description=self.typed(document, "description", str, ""),
            training=self.training(document),
            mode=self.mode(document),
            repeats=self.positive(document, "repeats", 1),
            seed=self.typed(document, "seed", int, 0),
            fixed=self.fixed(document, layers),
            axes=self.axes(document, layers),
            source=self.source,
            text=self.text,
        )
        spec.n_trials = self.n_trials(document, spec.mode)
        if spec.seed < 0:
            raise self.fail(
                f"seed must be a non-negative integer, received {spec.seed}", None, "seed"
            )
        self.check_trial_count(spec)
        return spec

    def check_trial_count(self, spec: StudySpec) -> None:
        """At most CNNLAB_MAX_TRIALS trials in any mode: configurations x repeats, and n_trials
        itself."""
        allowed = limits.limit("CNNLAB_MAX_TRIALS")
        raise_it = "set CNNLAB_MAX_TRIALS to raise the limit"
        if spec.mode == "grid" and spec.grid_size() * spec.repeats > allowed:
            raise self.fail(
                f"the grid has {spec.grid_size() * spec.repeats:,} trials (more than {allowed:,}); "
                f'use mode = "random" with n_trials, or {raise_it}',
                None,
                "mode",
            )
        if spec.n_trials is not None and spec.n_trials > allowed:
            raise self.fail(
                f"n_trials = {spec.n_trials:,} trials is more than {allowed:,}; {raise_it}",
                None,
                "n_trials",
            )
        configurations = (
            spec.grid_size() if spec.n_trials is None else min(spec.n_trials, spec.grid_size())
        )
        if configurations * spec.repeats > allowed:
            raise self.fail(
                f"{configurations:,} configurations x repeats = {spec.repeats:,} is "
                f"{configurations * spec.repeats:,} trials, more than {allowed:,}; {raise_it}",
                None,
                "repeats",
            )

    def load_toml(self) -> dict[str, Any]:
        try:
            return limits.loads_toml(self.text, self.source)
        except limits.LimitExceeded as err:
            raise CnnlabError(str(err)) from None
        except tomllib.TOMLDecodeError as err:
            found = re.search(r"at line (\d+)", str(err))
            where = f"{self.source}, line {found.group(1)}" if found else self.source
            raise CnnlabError(f"{where}: malformed TOML: {err}") from None

    # ------------------------------------------------------------------ top-level settings
    def typed(self, document: dict, key: str, kind: type, default: Any) -> Any:
        value = document.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(f"{key} must be a {kind.__name__}, received {value!r}", None, key)
        return value

    def positive(self, document: dict, key: str, default: int) -> int:
        value = self.typed(document, key, int, default)
        if value < 1:
            raise self.fail(f"{key} must be at least 1, received {value}", None, key)
        return value

    def mode(self, document: dict) -> str:
        mode = self.typed(document, "mode", str, "grid")
        if mode not in MODES:
            raise self.fail(
                f"mode must be one of {', '.join(MODES)}, received {mode!r}", None, "mode"
            )
        return mode

    def n_trials(self, document: dict, mode: str) -> int | None:
        if mode == "random" and "n_trials" not in document:
            raise self.fail(
                'mode = "random" needs n_trials (how many configurations to sample)', None, "mode"
            )
        if mode == "grid" and "n_trials" in document:
            raise self.fail(
                'n_trials applies to mode = "random" only; a grid runs every combination',
                None,
                "n_trials",
            )
        return self.positive(document, "n_trials", 1) if "n_trials" in document else None

    def model_name(self, document: dict) -> str:
        model = self.typed(document, "model", str, "seed-cnn")
        if model in models.BUILTIN_MODELS:
            return model
        path = Path(model) if Path(model).is_absolute() else self.base_dir / model
        if not path.is_file():
            names = ", ".join(models.BUILTIN_MODELS)
            raise self.fail(
                f"model {model!r} is neither a built-in ({names}) nor a model file", None, "model"
            )
        return str(path.resolve())

    def model_layers(self, model: str) -> dict[str, dict]:
        """{layer name: {class_name, config}} of the base model, in order."""
        try:
            config = models.model_config(model, PLACEHOLDER_SHAPE, PLACEHOLDER_CLASSES)
        except CnnlabError as err:
            raise self.fail(str(err), None, "model") from None
        layers = [layer for layer in config["layers"] if layer.get("class_name") != "InputLayer"]
        return {
            layer.get("config", {}).get("name", f"layer_{i}"): layer
            for i, layer in enumerate(layers)
        }

    def training(self, document: dict) -> dict[str, Any]:
        training = document.get("training", {})
        if not isinstance(training, dict):
            raise self.fail("training must be a table: [training]", None, "training")
        for key, value in training.items():
            if key not in TRAINING_TYPES:
                raise self.fail(
                    f"unknown training setting {key!r}; known: {', '.join(TRAINING_TYPES)}",
                    "training",
                    key,
                )
            if not isinstance(value, TRAINING_TYPES[key]) or isinstance(value, bool):
                raise self.fail(
                    f"training setting {key} has the wrong type: {value!r}", "training", key
                )
        try:
            TrainSettings(**training).validate()
        except CnnlabError as err:
            raise self.fail(str(err), "training") from None
        return dict(training)

    # ------------------------------------------------------------------ axes
    def fixed(self, document: dict, layers: dict[str, dict]) -> list[tuple[Axis, Value]]:
        table = self.table(document, "fixed")
        fixed = []
        for address, value in table.items():
            axis = self.axis(address, [value], layers, "fixed")
            fixed.append((axis, axis.values[0]))
        return fixed

    def axes(self, document: dict, layers: dict[str, dict]) -> list[Axis]:
        table = self.table(document, "axes")
        if not table:
            raise self.fail("the spec has no [axes] table: nothing to vary", "axes")
        axes = []
        for address, values in table.items():
            if not isinstance(values, list):
                raise self.fail(
                    f"axis {address!r} must be a list of values, e.g. [2, 3, 4]; received "
                    f"{values!r}",
                    "axes",
                    address,
                )
            if not values:
                raise self.fail(f"axis {address!r} has no values", "axes", address)
            axes.append(self.axis(address, values, layers, "axes"))
        return axes

    def table(self, document: dict, key: str) -> dict[str, Any]:
        table = document.get(key, {})
        if not isinstance(table, dict):
            raise self.fail(f"{key} must be a table: [{key}]", None, key)
        return table

    def axis(self, address: str, values: list, layers: dict[str, dict], table: str) -> Axis:
        """Resolve and check one ``"layers.argument" = values`` entry."""
        if "." not in address:
            raise self.fail(
                f'{address!r} is not an address: write "layer_name.argument", e.g. '
                '"conv2d.filters"',
                table,
                address,
            )
        pattern, argument = address.rsplit(".", 1)
        targets = self.resolve_layers(pattern, argument, address, layers, table)
        axis = Axis(address, tuple(targets), argument, tuple(values))
        for value in values:
            self.check_value(axis, value, layers, table)
        labels = [value_label(v) for v in values]
        if len(set(labels)) != len(labels):
            raise self.fail(f"axis {address!r} lists a value twice: {values!r}", table, address)
        return axis

    def resolve_layers(
        self, pattern: str, argument: str, address: str, layers: dict[str, dict], table: str
    ) -> list[str]:
        names = ", ".join(layers)
        targets: list[str] = []
        for part in (p.strip() for p in pattern.split(",")):
            matched = [name for name in layers if fnmatch.fnmatchcase(name, part)]
            if not matched:
                raise self.fail(
                    f"axis {address!r}: the model has no layer {part!r} (its layers: {names})",
                    table,
                    address,
                )
            wildcard = any(c in part for c in "*?[")
            takers = [
                name for name in matched if argument in layer_arguments(layers[name]["class_name"])
            ]
            if not takers or (not wildcard and len(takers) < len(matched)):
                name = matched[0] if not takers else next(n for n in matched if n not in takers)
                known = ", ".join(layer_arguments(layers[name]["class_name"]))
                raise self.fail(
                    f"axis {address!r}: {layers[name]['class_name']} {name!r} has no argument "
                    f"{argument!r} (its arguments: {known})",
                    table,
                    address,
                )
            targets += [name for name in takers if name not in targets]
        return targets

    def check_value(self, axis: Axis, value: Value, layers: dict[str, dict], table: str) -> None:
        """Build each changed layer with the value, so a bad value is refused now."""
        if isinstance(value, dict):
            stray = [name for name in value if name not in axis.layers]
            if stray or not value:
                raise self.fail(
                    f"axis {axis.address!r}: a table value must name some of the layers "
                    f"{', '.join(axis.layers)}; received {value!r}",
                    table,
                    axis.address,
                )
        for name, setting in axis.changes(value).items():
            layer = layers[name]
            try:
                deserialize(
                    {
                        "class_name": layer["class_name"],
                        "config": {**layer["config"], axis.argument: setting},
                    }
                )
            except (ValueError, TypeError) as err:
                raise self.fail(
                    f"axis {axis.address!r} value {setting!r}: {err}", table, axis.address
                ) from None


def layer_arguments(class_name: str) -> list[str]:
    """The constructor arguments an axis may set on a layer class (Keras names)."""
    cls = LAYER_CLASSES.get(class_name)
    if cls is None:
        return []
    parameters = inspect.signature(cls.__init__).parameters
    return [p for p in parameters if p not in NOT_AN_AXIS_ARGUMENT]


def value_label(value: Value) -> str:
    """How a value is shown: 3, [2, 3], same, or conv2d=same,conv2d_1=valid for a table."""
    if isinstance(value, dict):
        return ",".join(f"{layer}={value_label(setting)}" for layer, setting in value.items())
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --------------------------------------------------------------------------- loading


def builtin_specs() -> dict[str, Path]:
    """{name: path} of the spec files shipped with cnnlab (cnnlab/study/specs/*.toml)."""
    folder = resources.files("cnnlab.study") / "specs"
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def load_spec(name_or_path: str | Path) -> StudySpec:
    """A spec from a .toml file or a built-in name (``seed-study``); checked in full."""
    path = Path(name_or_path)
    if not path.is_file():
        builtins = builtin_specs()
        if str(name_or_path) not in builtins:
            known = ", ".join(sorted(builtins))
            raise CnnlabError(
                f"unknown study spec {str(name_or_path)!r}: give a .toml file or a built-in name "
                f"({known})"
            )
        path = builtins[str(name_or_path)]
    try:
        text = limits.read_file(path).decode("utf-8")
    except (OSError, ValueError) as err:  # UnicodeDecodeError, LimitExceeded are ValueErrors
        raise CnnlabError(f"cannot read the study spec {path}: {err}") from None
    return parse_spec(text, str(path), path.parent)


def parse_spec(text: str, source: str = "<spec>", base_dir: str | Path = ".") -> StudySpec:
    """A spec from TOML text; relative model files are looked up in ``base_dir``."""
    return SpecReader(text, source, Path(base_dir)).parse()


# --------------------------------------------------------------------------- configurations


def configurations(spec: StudySpec) -> list[dict[str, Value]]:
    """The configurations to train: the whole grid, or n_trials distinct random ones.

    Random sampling draws grid positions one by one from ``default_rng(seed)``, so a
    larger n_trials keeps the configurations of a smaller one (a study can grow).
    """
    sizes = [len(axis.values) for axis in spec.axes]
    total = spec.grid_size()
    if spec.mode == "grid" or spec.n_trials is None or spec.n_trials >= total:
        positions: list[int] = list(range(total))
    else:
        positions = sample_positions(total, spec.n_trials, spec.seed)
    return [configuration_at(spec, grid_digits(position, sizes)) for position in positions]


def sample_positions(total: int, count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    chosen: dict[int, None] = {}
    while len(chosen) < count:
        chosen.setdefault(int(rng.integers(total)), None)
    return list(chosen)


def grid_digits(position: int, sizes: list[int]) -> list[int]:
    """Mixed-radix digits of a grid position, the first axis varying slowest."""
    digits = []
    for size in reversed(sizes):
        position, digit = divmod(position, size)
        digits.append(digit)
    return digits[::-1]


def configuration_at(spec: StudySpec, digits: list[int]) -> dict[str, Value]:
    return {axis.address: axis.values[digit] for axis, digit in zip(spec.axes, digits)}


def apply_configuration(spec: StudySpec, base: dict, configuration: dict[str, Value]) -> dict:
    """A copy of the model config ``base`` with the fixed changes, then the configuration's."""
    config = json.loads(json.dumps(base))
    by_name = {layer["config"].get("name"): layer["config"] for layer in config["layers"]}
    changes = [(axis, value) for axis, value in spec.fixed]
    changes += [(axis, configuration[axis.address]) for axis in spec.axes]
    for axis, value in changes:
        for layer, setting in axis.changes(value).items():
            by_name[layer][axis.argument] = setting
    return config
