"""The downloader against a real HTTP server on 127.0.0.1: mirrors, retries, checksums."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnlab.datasets import download, mnist
from cnnlab.datasets.download import download_file
from cnnlab.errors import DatasetError

REPO_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_MNIST = Path(os.environ.get("CNNLAB_DATA_DIR") or REPO_SHARED_DATA) / "mnist"


@dataclasses.dataclass
class Reply:
    """One canned HTTP response; ``send_bytes`` cuts the body short after the headers."""

    body: bytes = b""
    status: int = 200
    send_bytes: int | None = None


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 answering each path with a queue of canned replies."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, *replies: Reply) -> str:
        """Answer ``path`` with ``replies`` in turn, the last one for ever after; return its URL."""
        self.replies[path] = list(replies)
        return self.url(path)

    def next_reply(self, path: str) -> Reply | None:
        with self.lock:
            self.requests[path] += 1
            queue = self.replies.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = server.next_reply(self.path)
                if reply is None:
                    self.send_error(404)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body[: reply.send_bytes])

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


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def small_idx_gz() -> tuple[bytes, str]:
    """A gzip-compressed label IDX file and the SHA-256 of its uncompressed payload."""
    payload = (0x00000801).to_bytes(4, "big") + (300).to_bytes(4, "big") + bytes(range(10)) * 30
    return gzip.compress(payload), hashlib.sha256(payload).hexdigest()


def fetch(urls: list[str], dest: Path, sha256: str | None, **options: object) -> Path:
    """download_file with fast settings for tests."""
    settings = {"decompressed_sha256": True, "retries": 1, "timeout": 5, "backoff": 0}
    settings["progress"] = False
    return download_file(urls, dest, sha256, **(settings | options))  # type: ignore[arg-type]


def test_good_file_lands_with_checksum_verified(server, tmp_path):
    body, digest = small_idx_gz()
    url = server.serve("/labels.gz", Reply(body))
    dest = fetch([url], tmp_path / "data" / "labels.gz", digest)
    assert dest.read_bytes() == body
    assert os.listdir(tmp_path / "data") == ["labels.gz"]


def test_raw_checksum_and_no_checksum(server, tmp_path):
    body = b"plain bytes, not gzip"
    url = server.serve("/plain.bin", Reply(body))
    fetch([url], tmp_path / "a.bin", hashlib.sha256(body).hexdigest(), decompressed_sha256=False)
    fetch([url], tmp_path / "b.bin", None, decompressed_sha256=False)
    assert (tmp_path / "a.bin").read_bytes() == body == (tmp_path / "b.bin").read_bytes()


def test_checksum_mismatch_is_refused_and_leaves_nothing(server, tmp_path):
    body, digest = small_idx_gz()
    corrupted = gzip.compress(gzip.decompress(body)[:-1] + b"\xff")
    url = server.serve("/labels.gz", Reply(corrupted))
    message = r"checksum mismatch: SHA-256 of the uncompressed content is [0-9a-f]{64}, expected "
    with pytest.raises(DatasetError, match=message + digest):
        fetch([url], tmp_path / "labels.gz", digest)
    assert os.listdir(tmp_path) == []
    assert server.requests["/labels.gz"] == 1  # a wrong checksum is not retried


def test_failed_download_keeps_an_existing_file_untouched(server, tmp_path):
    body, digest = small_idx_gz()
    (tmp_path / "labels.gz").write_bytes(b"old copy")
    url = server.serve("/labels.gz", Reply(b"garbage, not gzip"))
    with pytest.raises(DatasetError, match=r"not valid gzip data"):
        fetch([url], tmp_path / "labels.gz", digest)
    assert (tmp_path / "labels.gz").read_bytes() == b"old copy"
    assert os.listdir(tmp_path) == ["labels.gz"]


@pytest.mark.parametrize("first_mirror", ["closed port", "404"])
def test_second_mirror_is_used_when_the_first_is_down(
    server, tmp_path, closed_port_url, first_mirror
):
    body, digest = small_idx_gz()
    good = server.serve("/good/labels.gz", Reply(body))
    down = server.url("/missing/labels.gz")
    if first_mirror == "closed port":
        down = closed_port_url + "labels.gz"
    fetch([down, good], tmp_path / "labels.gz", digest, retries=2)
    assert (tmp_path / "labels.gz").read_bytes() == body
    if first_mirror == "404":
        assert server.requests["/missing/labels.gz"] == 1  # HTTP 404 is not retried


def test_unresolvable_host_is_not_retried(server, tmp_path, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    lookups = Counter()

    def getaddrinfo(host, *args, **kwargs):
        lookups[host] += 1
        if host == "offline.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    body, digest = small_idx_gz()
    good = server.serve("/labels.gz", Reply(body))
    fetch(["http://offline.invalid/labels.gz", good], tmp_path / "labels.gz", digest, retries=2)
    assert lookups["offline.invalid"] == 1
    assert (tmp_path / "labels.gz").read_bytes() == body


def test_interrupted_transfer_is_discarded_and_next_mirror_used(server, tmp_path):
    body, digest = small_idx_gz()
    cut = server.serve("/cut/labels.gz", Reply(body, send_bytes=len(body) // 2))
    good = server.serve("/good/labels.gz", Reply(body))
    fetch([cut, good], tmp_path / "labels.gz", digest, retries=1)
    assert server.requests["/cut/labels.gz"] == 2  # retried once, then the next mirror
    assert os.listdir(tmp_path) == ["labels.gz"]
    assert (tmp_path / "labels.gz").read_bytes() == body


def test_transient_server_error_is_retried_on_the_same_mirror(server, tmp_path):
    body, digest = small_idx_gz()
    url = server.serve("/labels.gz", Reply(b"busy", status=503), Reply(body))
    fetch([url], tmp_path / "labels.gz", digest, retries=1)
    assert server.requests["/labels.gz"] == 2
    assert (tmp_path / "labels.gz").read_bytes() == body


def test_all_mirrors_failing_lists_each_with_its_reason(server, tmp_path, closed_port_url):
    body, digest = small_idx_gz()
    urls = [
        closed_port_url + "labels.gz",
        server.url("/missing/labels.gz"),
        server.serve("/cut/labels.gz", Reply(body, send_bytes=10)),
        server.serve("/wrong/labels.gz", Reply(gzip.compress(b"other content"))),
    ]
    with pytest.raises(DatasetError) as caught:
        fetch(urls, tmp_path / "labels.gz", digest, retries=1)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"could not download labels.gz into {tmp_path}; every mirror failed:"
    assert lines[1].startswith(f"  {urls[0]}: connection failed:")
    assert lines[1].endswith("(after 2 attempts)")
    assert lines[2] == f"  {urls[1]}: HTTP 404 Not Found"
    assert lines[3] == (
        f"  {urls[2]}: interrupted transfer: connection closed after 10 of {len(body)} bytes "
        "(after 2 attempts)"
    )
    assert lines[4].startswith(f"  {urls[3]}: checksum mismatch")
    assert os.listdir(tmp_path) == []


def test_progress_is_quiet_when_stderr_is_not_a_terminal(server, tmp_path, capfd):
    body, digest = small_idx_gz()
    url = server.serve("/labels.gz", Reply(body))
    fetch([url], tmp_path / "labels.gz", digest, progress=True)
    assert capfd.readouterr() == ("", "")


def test_progress_bar_on_a_terminal(server, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    body, digest = small_idx_gz()
    url = server.serve("/labels.gz", Reply(body))
    fetch([url], tmp_path / "labels.gz", digest, progress=True)
    err = capfd.readouterr().err
    assert "downloading labels.gz" in err and f"{len(body)}/{len(body)} bytes" in err


def test_mirror_list_precedence(monkeypatch):
    monkeypatch.delenv(mnist.MIRRORS_ENV, raising=False)
    assert mnist.resolve_mirrors() == list(mnist.MIRRORS)
    assert mnist.MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    monkeypatch.setenv(mnist.MIRRORS_ENV, " http://a/mnist/ , http://b/ ,")
    assert mnist.resolve_mirrors() == ["http://a/mnist/", "http://b/"]
    assert mnist.resolve_mirrors(["http://c/"]) == ["http://c/"]


# --- MNIST end to end, serving copies of the real files ---------------------------------------

needs_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the MNIST files are not in {REAL_MNIST} (set CNNLAB_DATA_DIR)",
)


@needs_real_mnist
def test_mnist_downloads_missing_files_from_the_mirrors(
    server, tmp_path, closed_port_url, monkeypatch
):
    monkeypatch.setattr(download, "RETRY_BACKOFF_SECONDS", 0.0)
    for name in mnist.FILES.values():
        server.serve(f"/mnist/{name}.gz", Reply((REAL_MNIST / f"{name}.gz").read_bytes()))
    monkeypatch.setenv(mnist.MIRRORS_ENV, f"{closed_port_url}mnist/,{server.url('/mnist/')}")
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    shutil.copy(REAL_MNIST / "t10k-labels-idx1-ubyte.gz", folder)  # already there: not fetched

    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=tmp_path / "data")

    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-3)
    assert sorted(os.listdir(folder)) == sorted(f"{name}.gz" for name in mnist.FILES.values())
    assert server.requests["/mnist/t10k-labels-idx1-ubyte.gz"] == 0
    assert server.requests["/mnist/train-images-idx3-ubyte.gz"] == 1
    again = mnist.load_data(data_dir=tmp_path / "data", download=False)
    np.testing.assert_array_equal(again[1][0], x_test)


def test_mnist_download_failure_says_how_to_fix(server, tmp_path, closed_port_url, monkeypatch):
    monkeypatch.setattr(download, "RETRY_BACKOFF_SECONDS", 0.0)
    mirrors = [closed_port_url, server.url("/nothing/")]
    with pytest.raises(DatasetError) as caught:
        mnist.load_data(data_dir=tmp_path, mirrors=mirrors)
    message = str(caught.value)
    assert message.startswith(f"MNIST is not in {tmp_path / 'mnist'} and could not be downloaded")
    assert f"{closed_port_url}train-images-idx3-ubyte.gz: connection failed" in message
    assert f"{server.url('/nothing/')}train-images-idx3-ubyte.gz: HTTP 404" in message
    for hint in ("--data-dir", "CNNLAB_DATA_DIR", "--dataset digits"):
        assert hint in message
    assert os.listdir(tmp_path / "mnist") == []
