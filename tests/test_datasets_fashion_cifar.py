"""Fashion-MNIST and CIFAR-10: small files in the official formats, written by the tests.

Fashion-MNIST is four IDX .gz files (as MNIST); CIFAR-10 is ``cifar-10-binary.tar.gz`` with
3073-byte records (1 label byte, 3072 CHW pixel bytes). Downloads are served by an HTTP
server on 127.0.0.1, with the official digests and sizes replaced by those of the test files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnlab.datasets import (
    DATASETS,
    cifar10,
    download,
    fashion_mnist,
    load_dataset,
    prepare_images,
)
from cnnlab.datasets.download import resolve_mirrors
from cnnlab.errors import DatasetError

# --- helpers: files in the official formats ---------------------------------------------------


def idx_gz(array: np.ndarray) -> bytes:
    """A gzip-compressed IDX file of unsigned bytes holding ``array``."""
    header = (0x00000800 | array.ndim).to_bytes(4, "big")
    header += b"".join(dim.to_bytes(4, "big") for dim in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def fashion_arrays(n_train: int = 12, n_test: int = 6, size: int = 28) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def fashion_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """``{"train-images-idx3-ubyte.gz": content, ...}``."""
    return {f"{name}.gz": idx_gz(arrays[key]) for key, name in fashion_mnist.FILES.items()}


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Images (n, 32, 32, 3) HWC and labels (n,) -> the binary records, CHW planes."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels[:, np.newaxis], planes], axis=1).astype(np.uint8).tobytes()


def cifar_parts(per_member: int = 3, n_test: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random images and labels for each batch member."""
    rng = np.random.default_rng(2)
    counts = {name: per_member for name in cifar10.TRAIN_MEMBERS} | {"test_batch.bin": n_test}
    return {
        name: (
            rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8),
        )
        for name, n in counts.items()
    }


def tar_gz(members: dict[str, bytes], folder: str = cifar10.MEMBER_FOLDER) -> bytes:
    """A tar.gz archive holding ``members`` (name -> content) under ``folder/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def cifar_archive(parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    members = {name: cifar_records(*part) for name, part in parts.items()}
    members["batches.meta.txt"] = "\n".join(cifar10.CLASS_NAMES).encode()
    return tar_gz(members)


def write_cifar(data_dir: Path, content: bytes) -> Path:
    folder = data_dir / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / cifar10.ARCHIVE_NAME).write_bytes(content)
    return folder / cifar10.ARCHIVE_NAME


# --- a local HTTP server --------------------------------------------------------------------


class LocalServer:
    """Serves ``files[path]`` on 127.0.0.1 (404 otherwise); counts requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.no_length: set[str] = set()  # paths answered without a Content-Length
        self.requests: Counter[str] = Counter()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path not in server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.thread.start()
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()
    local.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "RETRY_BACKOFF_SECONDS", 0.0)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- Fashion-MNIST --------------------------------------------------------------------------


def test_fashion_mnist_reads_the_four_idx_files(tmp_path):
    arrays = fashion_arrays()
    write_files(tmp_path / "fashion_mnist", fashion_files(arrays))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
        data_dir=tmp_path, download=False
    )
    for key, loaded in {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
    }.items():
        assert loaded.dtype == np.uint8 and loaded.shape == arrays[key].shape
        np.testing.assert_array_equal(loaded, arrays[key])

    dataset = load_dataset("fashion_mnist", data_dir=tmp_path, download=False)
    assert dataset.name == "fashion_mnist" and dataset.source == str(tmp_path / "fashion_mnist")
    assert (
        dataset.class_names[:2] == ["T-shirt/top", "Trouser"]
        and dataset.class_names[-1] == "Ankle boot"
    )
    assert dataset.num_classes == 10 and dataset.y_train.shape == (12,)


def test_fashion_mnist_offline_error_names_the_folder_and_files(tmp_path):
    folder = tmp_path / "fashion_mnist"
    with pytest.raises(DatasetError) as caught:
        fashion_mnist.load_data(data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert message.startswith(
        f"Fashion-MNIST not found in {folder} (no IDX files) and downloading is off."
    )
    hints = (
        "--data-dir",
        "CNNLAB_DATA_DIR",
        "fashion_mnist/",
        "t10k-labels-idx1-ubyte.gz",
        "--dataset digits",
    )
    for hint in hints:
        assert hint in message

    files = fashion_files(fashion_arrays())
    del files["train-labels-idx1-ubyte.gz"]
    write_files(folder, files)
    with pytest.raises(
        DatasetError, match=r"\(missing train-labels-idx1-ubyte\.gz\) and downloading is off"
    ):
        fashion_mnist.load_data(data_dir=tmp_path, download=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"x_train": np.zeros((12, 27, 27), np.uint8)},
            r"\(12, 27, 27\), expected \(N, 28, 28\) for Fashion",
        ),
        (
            {"y_test": np.zeros(5, np.uint8)},
            r"holds 6 images but t10k-labels-idx1-ubyte holds 5 labels",
        ),
        ({"y_train": np.full(12, 10, np.uint8)}, r"12 label\(s\) outside 0\.\.9"),
    ],
)
def test_fashion_mnist_refuses_bad_files(tmp_path, change, message):
    write_files(tmp_path / "fashion_mnist", fashion_files(fashion_arrays() | change))
    with pytest.raises(DatasetError, match=message):
        fashion_mnist.load_data(data_dir=tmp_path, download=False)


def test_fashion_mnist_refuses_more_images_than_the_official_set(tmp_path, monkeypatch):
    monkeypatch.setitem(fashion_mnist.OFFICIAL_COUNTS, "test", 5)
    write_files(tmp_path / "fashion_mnist", fashion_files(fashion_arrays()))
    message = r"t10k-images-idx3-ubyte: 6 images, more than the 5 of the official test set"
    with pytest.raises(DatasetError, match=message):
        fashion_mnist.load_data(data_dir=tmp_path, download=False)


def serve_fashion(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]
) -> str:
    """Serve ``files`` under /fashion/ with their digests and sizes patched in; the base URL."""
    for name, content in files.items():
        server.files[f"/fashion/{name}"] = content
        stem = name.removesuffix(".gz")
        monkeypatch.setitem(fashion_mnist.FILE_SHA256, stem, sha256(content))
        monkeypatch.setitem(fashion_mnist.FILE_SIZES, stem, len(content))
    return server.url("/fashion/")


def test_fashion_mnist_downloads_what_is_missing_verified(server, tmp_path, monkeypatch):
    arrays = fashion_arrays()
    files = fashion_files(arrays)
    base = serve_fashion(server, monkeypatch, files)
    write_files(
        tmp_path / "fashion_mnist",
        {"t10k-labels-idx1-ubyte.gz": files["t10k-labels-idx1-ubyte.gz"]},
    )
    monkeypatch.setenv(fashion_mnist.MIRRORS_ENV, f"{server.url('/nothing/')},{base}")

    (x_train, _), (_, y_test) = fashion_mnist.load_data(data_dir=tmp_path)

    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert sorted(os.listdir(tmp_path / "fashion_mnist")) == sorted(files)
    assert server.requests["/fashion/t10k-labels-idx1-ubyte.gz"] == 0  # already there
    assert server.requests["/fashion/train-images-idx3-ubyte.gz"] == 1
    assert server.requests["/nothing/train-images-idx3-ubyte.gz"] == 1  # HTTP 404: next mirror


def test_fashion_mnist_refuses_a_corrupted_download(server, tmp_path, monkeypatch):
    files = fashion_files(fashion_arrays())
    base = serve_fashion(server, monkeypatch, files)
    good = files["train-images-idx3-ubyte.gz"]
    server.files["/fashion/train-images-idx3-ubyte.gz"] = (
        good[:100] + bytes([good[100] ^ 1]) + good[101:]
    )
    with pytest.raises(DatasetError) as caught:
        fashion_mnist.load_data(data_dir=tmp_path, mirrors=[base])
    message = str(caught.value)
    assert message.startswith(
        f"Fashion-MNIST is not in {tmp_path / 'fashion_mnist'} and could not be downloaded"
    )
    served = server.files["/fashion/train-images-idx3-ubyte.gz"]
    assert (
        f"checksum mismatch: SHA-256 of the file is {sha256(served)}, expected {sha256(good)}"
        in message
    )
    assert "--dataset digits" in message
    assert os.listdir(tmp_path / "fashion_mnist") == []  # nothing unverified is kept


# --- CIFAR-10 -------------------------------------------------------------------------------


def test_cifar10_reads_the_binary_archive_as_keras_does(tmp_path):
    parts = cifar_parts()
    write_cifar(tmp_path, cifar_archive(parts))
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(data_dir=tmp_path, download=False)

    assert x_train.shape == (15, 32, 32, 3) and x_test.shape == (4, 32, 32, 3)
    assert y_train.shape == (15, 1) and y_test.shape == (4, 1)
    assert {array.dtype for array in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.flags.c_contiguous and x_test.flags.c_contiguous
    expected_x = np.concatenate([parts[name][0] for name in cifar10.TRAIN_MEMBERS])
    expected_y = np.concatenate([parts[name][1] for name in cifar10.TRAIN_MEMBERS])
    np.testing.assert_array_equal(x_train, expected_x)
    np.testing.assert_array_equal(y_train[:, 0], expected_y)
    np.testing.assert_array_equal(x_test, parts["test_batch.bin"][0])


def test_cifar10_pixel_layout_red_green_blue_planes(tmp_path):
    """Record bytes 1 + c*1024 + row*32 + col hold channel c of pixel (row, col)."""
    record = np.zeros(cifar10.RECORD_BYTES, np.uint8)
    record[0] = 7
    record[1 + 0 * 1024 + 2 * 32 + 5] = 200  # red at row 2, column 5
    record[1 + 2 * 1024 + 31 * 32 + 0] = 99  # blue at row 31, column 0
    members = {name: record.tobytes() for name in cifar10.TRAIN_MEMBERS + cifar10.TEST_MEMBERS}
    write_cifar(tmp_path, tar_gz(members))
    (x_train, y_train), _ = cifar10.load_data(data_dir=tmp_path, download=False)
    assert x_train[0, 2, 5].tolist() == [200, 0, 0] and x_train[0, 31, 0].tolist() == [0, 0, 99]
    assert int(x_train[0].sum()) == 299 and y_train[0, 0] == 7


def test_cifar10_dataset_has_vector_labels_class_names_and_prepared_colour_images(tmp_path):
    parts = cifar_parts()
    archive = write_cifar(tmp_path, cifar_archive(parts))
    dataset = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert dataset.name == "cifar10" and dataset.source == str(archive)
    assert dataset.class_names == [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]  # fmt: skip
    assert dataset.y_train.shape == (15,) and dataset.y_test.shape == (4,)
    np.testing.assert_array_equal(dataset.y_test, parts["test_batch.bin"][1])
    x = prepare_images(dataset.x_train)
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, dataset.x_train / np.float32(255), rtol=1e-7)


def test_cifar10_offline_error_says_which_file_to_put_where(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"a pickle archive, never read")
    with pytest.raises(DatasetError) as caught:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert message.startswith(
        f"CIFAR-10 not found in {tmp_path / 'cifar10'} (no cifar-10-binary.tar.gz) and "
        "downloading is off."
    )
    hints = (
        "--data-dir",
        "CNNLAB_DATA_DIR",
        "cifar10/cifar-10-binary.tar.gz",
        "binary version",
        "--dataset digits",
    )
    for hint in hints:
        assert hint in message


def good_members() -> dict[str, bytes]:
    return {
        name: cifar_records(*part) for name, part in cifar_parts(per_member=2, n_test=2).items()
    }


def one_byte_short(members: dict[str, bytes]) -> dict[str, bytes]:
    return members | {"data_batch_2.bin": members["data_batch_2.bin"][:-1]}


def bad_label(members: dict[str, bytes]) -> dict[str, bytes]:
    content = bytearray(members["test_batch.bin"])
    content[cifar10.RECORD_BYTES] = 10  # the label of the second record
    return members | {"test_batch.bin": bytes(content)}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (one_byte_short, r"data_batch_2\.bin: 6145 bytes, not a whole number of 3073-byte records"),
        (lambda m: m | {"test_batch.bin": b""}, r"test_batch\.bin: 0 bytes, not a whole number"),
        (
            lambda m: {k: v for k, v in m.items() if k != "data_batch_5.bin"},
            r"member\(s\) missing: cifar-10-batches-bin/data_batch_5\.bin\. To fix",
        ),
        (bad_label, r"test_batch\.bin: 1 label\(s\) outside 0\.\.9 \(e\.g\. 10 in record 1\)"),
    ],
)
def test_cifar10_refuses_bad_members(tmp_path, corrupt, message):
    write_cifar(tmp_path, tar_gz(corrupt(good_members())))
    with pytest.raises(DatasetError, match=message):
        cifar10.load_data(data_dir=tmp_path, download=False)


def test_cifar10_refuses_a_member_larger_than_the_official_one(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "RECORDS_PER_MEMBER", 1)
    write_cifar(tmp_path, tar_gz(good_members()))
    message = (
        r"data_batch_1\.bin: 6146 bytes, larger than the official 3073 \(1 records of 3073 bytes\)"
    )
    with pytest.raises(DatasetError, match=message):
        cifar10.load_data(data_dir=tmp_path, download=False)


def symlink_member() -> bytes:
    """An archive whose data_batch_1.bin is a symbolic link."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo(f"{cifar10.MEMBER_FOLDER}/data_batch_1.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def member_twice() -> bytes:
    """An archive holding test_batch.bin twice."""
    content = good_members()["test_batch.bin"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for _ in range(2):
            info = tarfile.TarInfo(f"{cifar10.MEMBER_FOLDER}/test_batch.bin")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (symlink_member, r"data_batch_1\.bin: not a regular file"),
        (member_twice, r"test_batch\.bin: appears twice in the archive"),
        (
            lambda: tar_gz(good_members())[:-300],
            r"corrupt or truncated archive \(.+\); delete it and download it",
        ),
        (lambda: b"not a gzip file at all", r"corrupt or truncated archive"),
    ],
)
def test_cifar10_refuses_links_duplicates_truncation_and_non_gzip(tmp_path, archive, message):
    write_cifar(tmp_path, archive())
    with pytest.raises(DatasetError, match=message):
        cifar10.load_data(data_dir=tmp_path, download=False)


def serve_cifar(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, path: str, content: bytes
) -> str:
    """Serve ``content`` at ``path``/cifar-10-binary.tar.gz with its digest and size patched in."""
    server.files[f"{path}{cifar10.ARCHIVE_NAME}"] = content
    monkeypatch.setattr(cifar10, "ARCHIVE_SHA256", sha256(content))
    monkeypatch.setattr(cifar10, "ARCHIVE_SIZE", len(content))
    return server.url(path)


def test_cifar10_download_skips_a_corrupted_mirror_and_keeps_the_verified_archive(
    server, tmp_path, monkeypatch
):
    parts = cifar_parts()
    content = cifar_archive(parts)
    good = serve_cifar(server, monkeypatch, "/good/", content)
    corrupted = bytearray(content)
    corrupted[len(content) // 2] ^= 0xFF
    server.files[f"/bad/{cifar10.ARCHIVE_NAME}"] = bytes(corrupted)
    monkeypatch.setenv(cifar10.MIRRORS_ENV, f"{server.url('/bad/')},{good}")

    _, (x_test, y_test) = cifar10.load_data(data_dir=tmp_path)

    np.testing.assert_array_equal(x_test, parts["test_batch.bin"][0])
    assert y_test.shape == (4, 1)
    assert os.listdir(tmp_path / "cifar10") == [cifar10.ARCHIVE_NAME]
    assert (tmp_path / "cifar10" / cifar10.ARCHIVE_NAME).read_bytes() == content
    assert server.requests[f"/bad/{cifar10.ARCHIVE_NAME}"] == 1  # a wrong checksum is not retried
    cifar10.load_data(data_dir=tmp_path, mirrors=[])  # now local: no download
    assert server.requests[f"/good/{cifar10.ARCHIVE_NAME}"] == 1


@pytest.mark.parametrize(
    ("served", "announce", "reason"),
    [
        (
            lambda good: good[:-1] + bytes([good[-1] ^ 1]),
            True,
            r"checksum mismatch: SHA-256 of the file is",
        ),
        (lambda good: good + b"x", True, r"wrong size: the server announced \d+ bytes, not \d+"),
        (
            lambda good: good + b"x" * 70000,
            False,
            r"wrong size: the server sent more than \d+ bytes",
        ),
    ],
)
def test_cifar10_refuses_a_corrupted_download(
    server, tmp_path, monkeypatch, served, announce, reason
):
    good = cifar_archive(cifar_parts(per_member=1, n_test=1))
    base = serve_cifar(server, monkeypatch, "/c/", good)
    server.files[f"/c/{cifar10.ARCHIVE_NAME}"] = served(good)
    if not announce:
        server.no_length.add(f"/c/{cifar10.ARCHIVE_NAME}")
    with pytest.raises(DatasetError) as caught:
        cifar10.load_data(data_dir=tmp_path, mirrors=[base])
    message = str(caught.value)
    assert message.startswith(
        f"CIFAR-10 is not in {tmp_path / 'cifar10'} and could not be downloaded"
    )
    assert "--data-dir" in message
    assert re.search(reason, message), message
    assert os.listdir(tmp_path / "cifar10") == []


def test_mirror_list_precedence(monkeypatch):
    monkeypatch.delenv(cifar10.MIRRORS_ENV, raising=False)
    official = ["https://www.cs.toronto.edu/~kriz/"]
    assert resolve_mirrors(None, cifar10.MIRRORS_ENV, cifar10.MIRRORS) == official
    monkeypatch.setenv(cifar10.MIRRORS_ENV, " http://a/ , ,http://b/")
    assert resolve_mirrors(None, cifar10.MIRRORS_ENV, cifar10.MIRRORS) == ["http://a/", "http://b/"]
    assert resolve_mirrors(["http://c/"], cifar10.MIRRORS_ENV, cifar10.MIRRORS) == ["http://c/"]


# --- registration and the command line ------------------------------------------------------


def test_both_are_registered_and_the_cli_help_lists_every_dataset(capsys):
    from cnnlab.cli import main  # the engine, only for the command-line tests

    assert {"fashion_mnist", "cifar10"} <= set(DATASETS)
    for command in ("train", "explore", "compare", "evaluate"):
        assert main([command, "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        assert ", ".join(DATASETS) in help_text, command
    with pytest.raises(DatasetError, match=r"choose one of mnist, fashion_mnist, cifar10, digits"):
        load_dataset("cifar100")


def write_small_cifar10(data_dir):
    """A CIFAR-10 archive of 20 noise images per batch file (2 of each class) under data_dir."""
    rng = np.random.default_rng(3)
    parts = {
        name: (
            rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
            np.arange(20, dtype=np.uint8) % 10,
        )
        for name in cifar10.TRAIN_MEMBERS + cifar10.TEST_MEMBERS
    }
    write_cifar(data_dir, cifar_archive(parts))


def test_cli_explore_and_train_on_small_cifar10(tmp_path, capsys):
    from cnnlab.cli import main

    write_small_cifar10(tmp_path / "data")
    common = ["--data-dir", str(tmp_path / "data")]
    assert main(["explore", "cifar10", *common, "--out", str(tmp_path / "explore")]) == 0
    assert re.search(r"train\s*│\s*100\s*│\s*\(32, 32, 3\)\s*│\s*uint8", capsys.readouterr().out)
    report = (tmp_path / "explore" / "report.html").read_text()
    assert (
        '<td class="text">automobile</td><td>10</td><td>2</td>' in report
    )  # class, train, test counts
    argv = [
        "train",
        "--dataset",
        "cifar10",
        *common,
        "--epochs",
        "1",
        "--train-size",
        "60",
        "--test-size",
        "20",
        "--batch-size",
        "30",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["dataset"] == "cifar10"
    assert config["model"]["layers"][0]["config"]["batch_shape"] == [None, 32, 32, 3]
    assert (
        len(json.loads((tmp_path / "run" / "metrics.json").read_text())["confusion_matrix"]) == 10
    )
