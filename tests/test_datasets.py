"""Datasets: IDX reading, MNIST (real files and synthetic faults), digits, .npz, preprocessing."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from cnnlab.datasets import DATASETS, Dataset, digits, load_dataset, mnist, prepare_images
from cnnlab.datasets.datadir import resolve_data_dir
from cnnlab.datasets.idx import read_idx
from cnnlab.datasets.npz import load_npz
from cnnlab.errors import DatasetError

REAL_DATA_DIR = Path(
    os.environ.get("CNNLAB_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
REAL_MNIST = REAL_DATA_DIR / "mnist"
needs_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the MNIST files are not in {REAL_MNIST} (set CNNLAB_DATA_DIR)",
)


# --- helpers: small IDX files written by the tests ------------------------------------------


def idx_bytes(
    array: np.ndarray, magic: int | None = None, dims: tuple[int, ...] | None = None
) -> bytes:
    """An IDX file of unsigned bytes; ``magic`` and ``dims`` override the honest header."""
    dims = array.shape if dims is None else dims
    magic = 0x00000800 | array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, **header: object) -> Path:
    """Write ``array`` as IDX to ``path``, gzip-compressed when the name ends in .gz."""
    content = idx_bytes(array, **header)  # type: ignore[arg-type]
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


def random_mnist_arrays(n_train: int = 20, n_test: int = 10, size: int = 28) -> dict:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_mnist_folder(folder: Path, arrays: dict[str, np.ndarray], suffix: str = ".gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in mnist.FILES.items():
        write_idx(folder / f"{name}{suffix}", arrays[key])
    return folder


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data directory whose mnist/ folder holds four small, valid IDX .gz files."""
    arrays = random_mnist_arrays()
    write_mnist_folder(tmp_path / "mnist", arrays)
    return tmp_path, arrays


# --- data directory -------------------------------------------------------------------------


def test_data_dir_argument_then_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNLAB_DATA_DIR", raising=False)
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "cnnlab"
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


# --- IDX reader -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte", "anything.idx"])
def test_read_idx_round_trip(tmp_path, name):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    loaded = read_idx(write_idx(tmp_path / name, images))
    assert loaded.dtype == np.uint8 and loaded.shape == (3, 4, 5)
    np.testing.assert_array_equal(loaded, images)
    loaded[0, 0, 0] = 7  # writable, like Keras' arrays


IDX_FAULTS = [
    pytest.param(
        "t10k-labels-idx1-ubyte.gz",
        np.zeros((4, 2), np.uint8),
        {"magic": 0x00000802},
        r"t10k-labels-idx1-ubyte\.gz: wrong magic number 0x00000802 "
        r"\(expected 0x00000801 for a label file\)",
        id="label file with an image-like magic",
    ),
    pytest.param(
        "train-images-idx3-ubyte.gz",
        np.zeros(4, np.uint8),
        {},
        r"wrong magic number 0x00000801 \(expected 0x00000803 for an image file\)",
        id="image file holding labels",
    ),
    pytest.param(
        "floats.idx",
        np.zeros(4, np.uint8),
        {"magic": 0x00000D01},
        r"floats\.idx: wrong magic number 0x00000D01 \(expected 0x000008NN",
        id="float dtype code",
    ),
    pytest.param(
        "t10k-labels-idx1-ubyte.gz",
        np.zeros(9000, np.uint8),
        {"dims": (10000,)},
        r"t10k-labels-idx1-ubyte\.gz: truncated: header says 10000 items of 1 bytes",
        id="truncated labels",
    ),
    pytest.param(
        "train-images-idx3-ubyte",
        np.zeros((2, 28, 28), np.uint8),
        {"dims": (3, 28, 28)},
        r"truncated: header says 3 items of 784 bytes \(2352 bytes of data\), file holds 1568",
        id="truncated images",
    ),
    pytest.param(
        "t10k-labels-idx1-ubyte",
        np.zeros(12, np.uint8),
        {"dims": (10,)},
        r"unexpected trailing data: header says 10 items",
        id="trailing bytes",
    ),
]


@pytest.mark.parametrize(("name", "array", "header", "message"), IDX_FAULTS)
def test_read_idx_refuses_bad_headers(tmp_path, name, array, header, message):
    path = write_idx(tmp_path / name, array, **header)
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_read_idx_refuses_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.ones((50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz: corrupt or truncated"):
        read_idx(path)


def test_read_idx_refuses_non_gzip_content_named_gz(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8)))  # plain IDX behind a .gz name
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz: corrupt or truncated"):
        read_idx(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00", r"too short to be an IDX file: 2 bytes"),
        (
            b"\x00\x00\x08\x03\x00\x00\x00\x0a",
            r"truncated header: 3 dimensions need 16 header bytes",
        ),
    ],
)
def test_read_idx_refuses_short_files(tmp_path, content, message):
    path = tmp_path / "short.idx"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_read_idx_names_a_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nothere-idx1-ubyte\.gz: file not found"):
        read_idx(tmp_path / "nothere-idx1-ubyte.gz")


# --- MNIST on synthetic files ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_mnist_reads_idx_files_compressed_or_not(tmp_path, suffix):
    arrays = random_mnist_arrays()
    write_mnist_folder(tmp_path / "mnist", arrays, suffix=suffix)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=tmp_path, download=False)
    loaded = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, array in loaded.items():
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, arrays[key])


def test_mnist_refuses_labels_out_of_range(tiny_mnist):
    data_dir, arrays = tiny_mnist
    labels = arrays["y_test"].copy()
    labels[3] = 12
    write_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", labels)
    message = r"t10k-labels-idx1-ubyte\.gz: 1 label\(s\) outside 0\.\.9 \(e\.g\. 12 at index 3\)"
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(data_dir=data_dir, download=False)


def test_mnist_refuses_count_mismatch(tiny_mnist):
    data_dir, arrays = tiny_mnist
    write_idx(data_dir / "mnist" / "train-labels-idx1-ubyte.gz", arrays["y_train"][:19])
    message = (
        r"train-images-idx3-ubyte\.gz holds 20 images "
        r"but \S*train-labels-idx1-ubyte\.gz holds 19 labels"
    )
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(data_dir=data_dir, download=False)


def test_mnist_refuses_wrong_image_size(tmp_path):
    write_mnist_folder(tmp_path / "mnist", random_mnist_arrays(size=27))
    message = r"idx3-ubyte\.gz: images have shape \(20, 27, 27\), expected \(N, 28, 28\)"
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(data_dir=tmp_path, download=False)


def test_mnist_names_the_missing_file(tiny_mnist):
    data_dir, _ = tiny_mnist
    (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    message = r"missing: t10k-labels-idx1-ubyte\(\.gz\); expected the four IDX files"
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(path=data_dir / "mnist")
    message = r"MNIST not found in \S+ \(missing t10k-labels-idx1-ubyte\.gz, no mnist\.npz\)"
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(data_dir=data_dir, download=False)


def test_mnist_offline_error_says_how_to_fix(tmp_path):
    with pytest.raises(DatasetError) as caught:
        mnist.load_data(data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert f"MNIST not found in {tmp_path / 'mnist'}" in message
    advice = ["--data-dir", "CNNLAB_DATA_DIR", "mnist.npz", "train-images-idx3-ubyte.gz"]
    for hint in [*advice, "--dataset digits"]:
        assert hint in message
    assert not (tmp_path / "mnist").exists()


def test_mnist_reads_a_keras_npz_in_the_data_dir_or_by_path(tmp_path):
    arrays = random_mnist_arrays()
    (tmp_path / "mnist").mkdir()
    np.savez(tmp_path / "mnist" / "mnist.npz", **arrays)
    for loaded in (
        mnist.load_data(data_dir=tmp_path, download=False),
        mnist.load_data(path=tmp_path / "mnist" / "mnist.npz"),
    ):
        (x_train, y_train), (x_test, y_test) = loaded
        np.testing.assert_array_equal(x_train, arrays["x_train"])
        np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_mnist_npz_with_float_images_is_refused(tmp_path):
    arrays = random_mnist_arrays()
    arrays["x_train"] = arrays["x_train"] / 255.0
    np.savez(tmp_path / "mnist.npz", **arrays)
    message = r"mnist\.npz: x_train has dtype float64, expected uint8"
    with pytest.raises(DatasetError, match=message):
        mnist.load_data(path=tmp_path / "mnist.npz")


def test_mnist_path_that_does_not_exist(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.npz: not found; expected a Keras mnist\.npz"):
        mnist.load_data(path=tmp_path / "nope.npz")


# --- MNIST on the real files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_mnist():
    return mnist.load_data(data_dir=REAL_DATA_DIR, download=False)


@needs_real_mnist
def test_real_mnist_shapes_dtypes_and_statistics(real_mnist):
    (x_train, y_train), (x_test, y_test) = real_mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-3)
    assert np.bincount(y_train, minlength=10).sum() == 60000
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(y_test, minlength=10).tolist() == test_counts
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]


@needs_real_mnist
@pytest.mark.parametrize("name", sorted(mnist.PAYLOAD_SHA256))
def test_real_mnist_payload_checksums(name):
    payload = gzip.decompress((REAL_MNIST / f"{name}.gz").read_bytes())
    assert hashlib.sha256(payload).hexdigest() == mnist.PAYLOAD_SHA256[name]


@needs_real_mnist
def test_load_dataset_mnist_wraps_the_real_files():
    dataset = load_dataset("mnist", data_dir=REAL_DATA_DIR, download=False)
    assert isinstance(dataset, Dataset)
    assert dataset.name == "mnist" and dataset.source == str(REAL_MNIST)
    assert dataset.class_names == [str(d) for d in range(10)] and dataset.num_classes == 10
    assert dataset.x_train.shape == (60000, 28, 28)


# --- digits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_data():
    return digits.load_data()


def test_digits_shapes_dtypes_and_split(digits_data):
    (x_train, y_train), (x_test, y_test) = digits_data
    assert x_train.shape == (1347, 8, 8) and x_test.shape == (450, 8, 8)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.min() == 0 and x_train.max() == 255
    assert set(np.unique(x_train)) <= {round(v * 255 / 16) for v in range(17)}
    assert np.unique(y_train).tolist() == list(range(10))
    assert np.bincount(y_test).min() >= 43 and np.bincount(y_test).max() <= 46  # stratified


def test_digits_split_is_deterministic(digits_data):
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    np.testing.assert_array_equal(x_train, digits_data[0][0])
    np.testing.assert_array_equal(y_test, digits_data[1][1])


def test_load_dataset_digits():
    dataset = load_dataset("digits")
    assert dataset.name == "digits" and dataset.source == "scikit-learn"
    assert dataset.num_classes == 10 and len(dataset.x_test) == 450


# --- user .npz files ------------------------------------------------------------------------


def npz_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.random((12, 6, 5, 3)).astype(np.float32),
        "y_train": np.arange(12) % 3,
        "x_test": rng.random((4, 6, 5, 3)).astype(np.float32),
        "y_test": np.array([0, 1, 2, 0]),
    }


def test_load_npz_round_trip_and_dataset(tmp_path):
    arrays = npz_arrays()
    np.savez(tmp_path / "shapes.npz", class_names=np.array(["circle", "square", "star"]), **arrays)
    (x_train, y_train), (x_test, y_test) = load_npz(tmp_path / "shapes.npz")
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    dataset = load_dataset(str(tmp_path / "shapes.npz"))
    assert dataset.name == "shapes" and dataset.class_names == ["circle", "square", "star"]
    assert dataset.source == str(tmp_path / "shapes.npz")


def test_load_npz_flattens_column_labels_and_names_classes_by_index(tmp_path):
    arrays = npz_arrays()
    arrays["y_train"] = arrays["y_train"].reshape(-1, 1)
    np.savez(tmp_path / "mine.npz", **arrays)
    dataset = load_dataset(str(tmp_path / "mine.npz"))
    assert dataset.y_train.shape == (12,) and dataset.class_names == ["0", "1", "2"]


def _drop(key):
    return lambda arrays: arrays.pop(key)


def _set(key, value):
    return lambda arrays: arrays.__setitem__(key, value)


def _nan(arrays):
    arrays["x_test"][1, 2, 3, 0] = np.nan


NPZ_FAULTS = [
    pytest.param(
        _drop("y_test"),
        r"missing array\(s\) y_test; expected x_train, y_train, x_test, y_test",
        id="missing key",
    ),
    pytest.param(_nan, r"x_test contains 1 NaN or infinite values", id="NaN"),
    pytest.param(
        _set("x_train", np.full((12, 6, 5, 3), np.inf, np.float32)),
        r"x_train contains 1080 NaN or infinite",
        id="inf",
    ),
    pytest.param(
        _set("y_train", np.arange(12) / 1.0),
        r"y_train has dtype float64, expected integer class indices",
        id="float labels",
    ),
    pytest.param(
        _set("y_test", np.array([0, -1, 2, 0])),
        r"y_test contains negative labels \(minimum -1\)",
        id="negative labels",
    ),
    pytest.param(
        _set("y_test", np.array([0, 1, 2])),
        r"x_test holds 4 images but y_test holds 3 labels",
        id="count mismatch",
    ),
    pytest.param(
        _set("x_train", np.zeros((12, 30))),
        r"x_train has shape \(12, 30\), expected \(N, H, W\) or \(N, H, W, C\)",
        id="rank 2 images",
    ),
    pytest.param(
        _set("x_test", np.zeros((4, 6, 6, 3))),
        r"x_train images have shape \(6, 5, 3\) but x_test images have shape \(6, 6, 3\)",
        id="train/test shapes differ",
    ),
    pytest.param(
        _set("y_train", np.eye(3)[np.arange(12) % 3]),
        r"y_train has shape \(12, 3\), expected \(N,\) integer class indices",
        id="one-hot labels",
    ),
]


@pytest.mark.parametrize(("corrupt", "message"), NPZ_FAULTS)
def test_load_npz_refuses_bad_arrays(tmp_path, corrupt, message):
    arrays = npz_arrays()
    corrupt(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=r"bad\.npz: " + message):
        load_npz(tmp_path / "bad.npz")


def test_load_npz_refuses_object_arrays_without_unpickling(tmp_path):
    arrays = npz_arrays()
    arrays["y_train"] = np.array([{"label": 1}] * 12, dtype=object)
    np.savez(tmp_path / "objects.npz", allow_pickle=True, **arrays)
    message = r"objects\.npz: array 'y_train' holds Python objects \(dtype=object\)"
    with pytest.raises(DatasetError, match=message):
        load_npz(tmp_path / "objects.npz")


def test_load_npz_refuses_a_file_that_is_not_npz(tmp_path):
    (tmp_path / "notes.npz").write_text("not a zip archive at all")
    with pytest.raises(DatasetError, match=r"notes\.npz: not a readable \.npz archive"):
        load_npz(tmp_path / "notes.npz")


# --- load_dataset dispatch ------------------------------------------------------------------


def test_load_dataset_unknown_name():
    message = (
        "unknown dataset 'foo': choose one of mnist, fashion_mnist, cifar10, digits, or give a "
        "path to a .npz file "
        "with x_train, y_train, x_test, y_test"
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset("foo")
    assert str(caught.value) == message
    assert DATASETS == ("mnist", "fashion_mnist", "cifar10", "digits")


def test_load_dataset_missing_npz_path(tmp_path):
    with pytest.raises(DatasetError, match=r"gone\.npz: file not found"):
        load_dataset(str(tmp_path / "gone.npz"))


def test_load_dataset_from_a_folder_of_idx_files(tiny_mnist):
    data_dir, arrays = tiny_mnist
    dataset = load_dataset(str(data_dir / "mnist"))
    assert dataset.name == "mnist" and dataset.source == str(data_dir / "mnist")
    np.testing.assert_array_equal(dataset.x_test, arrays["x_test"])


def test_dataset_errors_are_value_errors():
    with pytest.raises(ValueError):
        load_dataset("foo")


# --- preprocessing --------------------------------------------------------------------------


def test_prepare_images_scales_integers_and_adds_channel_axis():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    prepared = prepare_images(x)
    assert prepared.dtype == np.float32 and prepared.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(prepared[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_prepare_images_keeps_float_values_and_channels():
    x = np.random.default_rng(0).random((2, 3, 3, 2))
    prepared = prepare_images(x)
    assert prepared.dtype == np.float32 and prepared.shape == (2, 3, 3, 2)
    np.testing.assert_allclose(prepared, x, rtol=1e-6)


def test_prepare_images_refuses_wrong_rank():
    message = r"images have shape \(5, 784\), expected \(N, H, W\) or \(N, H, W, C\)"
    with pytest.raises(DatasetError, match=message):
        prepare_images(np.zeros((5, 784), np.uint8))
