"""Property-based fuzzing of every file reader (issue 15): IDX, .npz, .cnnlab, checkpoints,
study specs (TOML) and model files (JSON).

Whatever the bytes, a reader either returns a correct result or raises a clean ``ValueError``
(``CnnlabError`` is one) whose message is one line; never another exception, and never more
memory than a small budget (the file limits are lowered for the session, so a declared size
over them is refused rather than allocated). A fixed, small number of examples per reader
keeps the whole file under ~20 s; ``derandomize`` makes CI draw the same examples every time.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab import models
from cnnlab.datasets.idx import read_idx
from cnnlab.datasets.npz import load_npz
from cnnlab.engine import Sequential, layers, load_model
from cnnlab.engine.metadata import NewerFieldWarning
from cnnlab.study.spec import parse_spec

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MEMORY_BUDGET = (
    48 << 20
)  # bytes a reader may allocate for one fuzzed file (the limit below is 16 MiB)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(autouse=True)
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CNNLAB_MAX_FILE_BYTES", str(16 << 20))
    monkeypatch.setenv("CNNLAB_MAX_PARAMS", "2000000")
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", NewerFieldWarning
        )  # unknown fields are reported, not errors
        yield


def clean_outcome(read: Callable[[], Any]) -> Any:
    """read()'s result, or None when it refused cleanly; anything else fails the test."""
    tracemalloc.start()
    try:
        return read()
    except ValueError as err:  # CnnlabError, DatasetError, UnsupportedKerasFeature are ValueErrors
        assert "\n" not in str(err).strip(), f"a multi-line message: {err}"
        return None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_BUDGET, f"the reader allocated {peak:,} bytes"


def mutations() -> st.SearchStrategy[list[tuple[float, int]]]:
    """Byte changes as (relative position, new byte)."""
    return st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6)


def mutate(data: bytes, changes: list[tuple[float, int]], cut: float | None) -> bytes:
    buffer = bytearray(data)
    for position, value in changes:
        buffer[int(position * len(buffer))] = value
    return bytes(buffer[: int(cut * len(buffer))] if cut is not None else buffer)


CUTS = st.none() | st.floats(0, 1)


# --------------------------------------------------------------------------------- IDX
@FUZZ
@given(
    dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 12), min_size=0, max_size=4),
    payload=st.binary(max_size=300),
    gz=st.booleans(),
    changes=mutations(),
)
def test_idx_reader(
    tmp_path: Path, dims: list[int], payload: bytes, gz: bool, changes: list
) -> None:
    content = mutate(
        (0x0800 | len(dims)).to_bytes(4, "big")
        + b"".join(d.to_bytes(4, "big") for d in dims)
        + payload,
        changes,
        None,
    )
    path = tmp_path / ("images.idx.gz" if gz else "images.idx")
    path.write_bytes(gzip.compress(content) if gz else content)
    result = clean_outcome(lambda: read_idx(path))
    if result is not None:  # a correct result: the header's shape, the payload's bytes
        ndim = content[3]
        shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        assert result.shape == shape and result.tobytes() == content[4 + 4 * ndim :]


# --------------------------------------------------------------------------------- .npz
def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


VALID_NPZ = npz_bytes(
    {
        "x_train": np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
        "y_train": np.array([0, 1]),
        "x_test": np.zeros((1, 3, 3), np.uint8),
        "y_test": np.array([1]),
    }
)


@FUZZ
@given(changes=mutations(), cut=CUTS)
def test_npz_reader_on_damaged_bytes(tmp_path: Path, changes: list, cut: float | None) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(mutate(VALID_NPZ, changes, cut))
    result = clean_outcome(lambda: load_npz(path))
    if result is not None:
        (x_train, y_train), (x_test, y_test) = result
        assert x_train.shape[0] == len(y_train) and x_test.shape[1:] == x_train.shape[1:]


@FUZZ
@given(
    key=st.sampled_from(["x_train", "y_train", "x_test", "y_test"]),
    shape=st.lists(st.integers(0, 2**40), max_size=5),
    descr=st.sampled_from(["|u1", "<i8", "<f4", "|O", "<U3", "|V4"]),
    data=st.binary(max_size=64),
)
def test_npz_reader_on_forged_headers(
    tmp_path: Path, key: str, shape: list[int], descr: str, data: bytes
) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    )
    with (
        zipfile.ZipFile(io.BytesIO(VALID_NPZ)) as source,
        zipfile.ZipFile(tmp_path / "data.npz", "w") as target,
    ):
        for name in source.namelist():
            target.writestr(
                name, header.getvalue() + data if name == f"{key}.npy" else source.read(name)
            )
    clean_outcome(lambda: load_npz(tmp_path / "data.npz"))


# ------------------------------------------------------------------- .cnnlab and checkpoints
def small_model() -> Sequential:
    model = Sequential(
        [layers.Input(shape=(4,)), layers.Dense(3, activation="softmax", name="dense")], seed=0
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from cnnlab.engine import callbacks

    folder = tmp_path_factory.mktemp("saved")
    model = small_model()
    model.save(folder / "m.cnnlab")
    x, y = np.random.default_rng(0).random((8, 4)), np.eye(3)[np.arange(8) % 3]
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.BackupAndRestore(folder, delete_checkpoint=False)],
    )
    return {
        "model": (folder / "m.cnnlab").read_bytes(),
        "checkpoint": (folder / "checkpoint.cnnlab").read_bytes(),
    }


def with_meta_field(archive: bytes, key: str, value: Any) -> bytes:
    """The archive with one field of meta.json replaced (or added)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        members = {name: source.read(name) for name in source.namelist()}
    meta = json.loads(members["meta.json"])
    meta[key] = value
    members["meta.json"] = json.dumps(meta).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    return buffer.getvalue()


def read_checkpoint(path: Path) -> tuple[int, dict, list]:
    return small_model().load_checkpoint(path)


READERS = {"model": lambda path: load_model(path), "checkpoint": read_checkpoint}
META_KEYS = [
    "format",
    "format_version",
    "arrays",
    "checksum",
    "model_class",
    "model_config",
    "compile_config",
    "weights_only",
    "epoch",
    "history",
    "epoch_seconds",
    "rng_states",
    "newer_setting",
]


@FUZZ
@given(kind=st.sampled_from(["model", "checkpoint"]), changes=mutations(), cut=CUTS)
def test_archive_readers_on_damaged_bytes(
    tmp_path: Path, saved_files: dict, kind: str, changes: list, cut: Any
) -> None:
    path = tmp_path / f"{kind}.cnnlab"
    path.write_bytes(mutate(saved_files[kind], changes, cut))
    clean_outcome(lambda: READERS[kind](path))


@FUZZ
@given(kind=st.sampled_from(["model", "checkpoint"]), key=st.sampled_from(META_KEYS), value=JSON)
def test_archive_readers_on_altered_metadata(
    tmp_path: Path, saved_files: dict, kind: str, key: str, value: Any
) -> None:
    path = tmp_path / f"{kind}.cnnlab"
    path.write_bytes(with_meta_field(saved_files[kind], key, value))
    result = clean_outcome(lambda: READERS[kind](path))
    if result is not None and kind == "model":
        assert result.count_params() <= 2_000_000


# -------------------------------------------------------------------------- study specs
def toml_value(value: Any) -> str:
    """A TOML literal of a JSON-like value (inline arrays and tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, (int, str)):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


SPEC_KEYS = [
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
    "other",
]
TOML_VALUE = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["seed-cnn", "random", "grid", "conv2d.filters", "dense.units"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["conv2d.filters", "dense.units", "epochs", "x"]), children, max_size=3
        )
    ),
    max_leaves=8,
)


@FUZZ
@given(document=st.dictionaries(st.sampled_from(SPEC_KEYS), TOML_VALUE, max_size=6))
def test_study_spec_reader_on_structured_documents(document: dict) -> None:
    text = "\n".join(f"{json.dumps(key)} = {toml_value(value)}" for key, value in document.items())
    clean_outcome(lambda: parse_spec(text, "fuzz.toml"))


@FUZZ
@given(text=st.text(max_size=200))
def test_study_spec_reader_on_any_text(text: str) -> None:
    clean_outcome(lambda: parse_spec(text, "fuzz.toml"))


# -------------------------------------------------------------------------- model files
LAYER_KEYS = [
    "name",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "units",
    "activation",
    "rate",
    "pool_size",
    "target_shape",
    "axis",
    "use_bias",
    "momentum",
]
LAYER_SPEC = st.fixed_dictionaries(
    {
        "class_name": st.sampled_from(
            [
                "Conv2D",
                "Dense",
                "MaxPooling2D",
                "AveragePooling2D",
                "Flatten",
                "Dropout",
                "BatchNormalization",
                "Reshape",
                "GlobalAveragePooling2D",
                "ReLU",
                "Softmax",
                "Lambda",
            ]
        ),
        "config": st.dictionaries(
            st.sampled_from(LAYER_KEYS), JSON | st.integers(1, 4), max_size=4
        ),
    }
)


@FUZZ
@given(layer_specs=st.lists(LAYER_SPEC, min_size=1, max_size=4), as_json=st.booleans())
def test_model_file_reader_and_builder(
    tmp_path: Path, layer_specs: list[dict], as_json: bool
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"layers": layer_specs}) if as_json else json.dumps(layer_specs))

    def read_and_build() -> Any:
        config = models.model_config(str(path), (6, 6, 1), 3)
        return models.build_model(config, 3, seed=0)

    model = clean_outcome(read_and_build)
    if model is not None:
        assert model.output_shape[-1] == 3 and model.count_params() <= 2_000_000


@FUZZ
@given(text=st.text(max_size=120) | st.binary(max_size=120).map(lambda b: b.decode("latin-1")))
def test_model_file_reader_on_any_text(tmp_path: Path, text: str) -> None:
    (tmp_path / "model.json").write_text(text, encoding="utf-8")
    clean_outcome(lambda: models.read_model_file(tmp_path / "model.json"))
