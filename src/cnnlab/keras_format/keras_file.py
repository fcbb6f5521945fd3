"""The ``.keras`` file itself: a zip of ``metadata.json``, ``config.json`` and
``model.weights.h5``, written atomically and read with bounded sizes; ``register`` hands the
``.keras`` and ``.h5`` suffixes of ``model.save`` / ``load_model`` to this package."""

from __future__ import annotations

import datetime
import json
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from cnnlab import __version__
from cnnlab.engine import limits, saving
from cnnlab.engine.errors import UnsupportedKerasFeature

from .common import KERAS_FORMAT_VERSION, MAX_JSON_BYTES
from .compiling import compile_from_keras
from .config_in import build_model
from .config_out import to_keras_config
from .legacy_h5 import load_legacy_h5
from .weights import open_h5, read_weights, weights_h5_bytes


def register() -> None:
    """Make ``model.save("m.keras")`` and ``load_model("m.keras" | "m.h5")`` use this module."""
    saving.register_format(".keras", save_keras, load_keras)
    saving.register_format(".h5", save_keras, load_keras)


def save_keras(model: Any, path: str | Path) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file that ``keras.models.load_model`` reads."""
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise UnsupportedKerasFeature(
            f"{path}: cnnlab writes Keras's .keras format, not legacy {path.suffix}; "
            "save as .keras (or .cnnlab)"
        )
    config = to_keras_config(model)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "saved_by": f"cnnlab {__version__}",
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    weights = weights_h5_bytes(model, bool(config.get("compile_config")))

    def write(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", weights)

    saving.atomic_write(path, write)


def load_keras(path: str | Path, compile: bool = True) -> Any:
    """A cnnlab model from a Keras 3 ``.keras`` file or a legacy ``.h5`` full-model file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() == ".h5":
        return load_legacy_h5(path, compile)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a Keras .keras file (not a zip archive; damaged or truncated?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = read_json_member(path, archive, "config.json")
            model = build_model(path, config)
            if "model.weights.h5" not in archive.namelist():
                raise ValueError(f"{path}: no model.weights.h5 inside (the weights are missing)")
            with archive.open("model.weights.h5") as member, open_h5(path, member) as h5:
                read_weights(path, h5, model)
                if compile:
                    compile_from_keras(
                        path, model, config.get("compile_config"), h5.get("optimizer/vars")
                    )
    except (zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: damaged file ({err})") from None
    return model


def read_json_member(path: Path, archive: zipfile.ZipFile, member: str) -> dict[str, Any]:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ValueError(f"{path}: not a Keras .keras file (no {member} inside)") from None
    if info.file_size > MAX_JSON_BYTES:
        raise ValueError(
            f"{path}: {member} declares {info.file_size:,} bytes (more than {MAX_JSON_BYTES:,}); "
            "refused"
        )
    try:
        config = limits.loads_json(archive.read(member), f"{path}: {member}")  # nesting bounded too
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: damaged {member} ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: {member} is not a JSON object")
    return config
