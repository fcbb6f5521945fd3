"""Verified, atomic file downloads from a list of mirrors, with ``urllib`` only.

Each mirror is tried in order. A transient fault (no connection, timeout, HTTP 5xx, a
transfer cut short before Content-Length bytes) is retried on the same mirror after a short,
doubling pause; a permanent one (HTTP 4xx, checksum mismatch, a host name that does not
resolve, as when offline) moves on to the next mirror at once. The bytes stream into a hidden
temporary file next to the destination, are checked against a SHA-256, and only then renamed
into place with ``os.replace`` (atomic), so the destination never holds a partial or
unverified file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from cnnlab import __version__
from cnnlab.errors import DatasetError

RETRY_BACKOFF_SECONDS = 1.0
CHUNK_SIZE = 1 << 16
USER_AGENT = f"cnnlab/{__version__} (dataset downloader; Python urllib)"


class TransientFailure(Exception):
    """A fault worth retrying on the same mirror: network trouble, HTTP 5xx, a cut transfer."""


class PermanentFailure(Exception):
    """A fault that retrying the same mirror will not fix: HTTP 4xx, wrong checksum."""


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """How to fetch and check one file; see :func:`download_file` for the meaning of each."""

    sha256: str | None
    decompressed_sha256: bool
    retries: int
    timeout: float
    progress: bool
    backoff: float
    size: int | None = None


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike[str],
    sha256: str | None,
    *,
    decompressed_sha256: bool,
    retries: int = 2,
    timeout: float = 30,
    progress: bool = True,
    backoff: float | None = None,
    size: int | None = None,
) -> Path:
    """Download one file from the first mirror in ``urls`` that delivers it intact.

    ``sha256`` is the expected hex digest (None: not checked); with ``decompressed_sha256``
    it is the digest of the gunzipped content (as the MNIST checksums are). ``retries`` is
    the number of extra attempts per mirror after a transient fault, ``backoff`` the first
    pause in seconds (doubling; default :data:`RETRY_BACKOFF_SECONDS`), ``timeout`` the
    socket timeout. ``size`` is the file's length in bytes (None: not checked): a mirror that
    announces another Content-Length, or sends more, is refused before the bytes are kept.
    A rich progress bar is shown when ``progress`` and stderr is a terminal.
    Returns ``dest``; raises :class:`DatasetError` listing every mirror and why it failed.
    """
    dest = Path(dest)
    if not urls:
        raise DatasetError(f"cannot download {dest.name}: no mirror URL was given")
    settings = DownloadSettings(
        sha256=sha256.lower() if sha256 else None,
        decompressed_sha256=decompressed_sha256,
        retries=max(retries, 0),
        timeout=timeout,
        progress=progress,
        backoff=RETRY_BACKOFF_SECONDS if backoff is None else backoff,
        size=size,
    )
    make_folder(dest.parent)
    return try_mirrors(urls, dest, settings)


def try_mirrors(urls: Sequence[str], dest: Path, settings: DownloadSettings) -> Path:
    """``dest`` from the first mirror that delivers it intact; DatasetError listing every mirror
    and why it failed."""
    failures = []
    for url in urls:
        reason = try_mirror(url, dest, settings)
        if reason is None:
            return dest
        failures.append(f"  {url}: {reason}")
    raise DatasetError(
        f"could not download {dest.name} into {dest.parent}; every mirror failed:\n"
        + "\n".join(failures)
    )


def resolve_mirrors(
    mirrors: Sequence[str] | None, env_name: str, defaults: Sequence[str]
) -> list[str]:
    """Mirror base URLs: ``mirrors``, else ``$<env_name>`` (comma separated), else ``defaults``."""
    if mirrors is not None:
        return list(mirrors)
    from_env = [url.strip() for url in os.environ.get(env_name, "").split(",")]
    return [url for url in from_env if url] or list(defaults)


def make_folder(folder: Path) -> None:
    """Create the destination folder, or say why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"{folder}: cannot create the download folder: {error}") from None


def try_mirror(url: str, dest: Path, settings: DownloadSettings) -> str | None:
    """Fetch ``url`` into ``dest`` with retries; None on success, else why it failed."""
    reason = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(settings.backoff * 2 ** (attempt - 1))
        try:
            fetch_verified(url, dest, settings)
            return None
        except PermanentFailure as failure:
            return str(failure)
        except TransientFailure as failure:
            reason = str(failure)
    attempts = settings.retries + 1
    return f"{reason} (after {attempts} attempt{'s' if attempts > 1 else ''})"


def fetch_verified(url: str, dest: Path, settings: DownloadSettings) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, verify it, then rename it."""
    handle, temp_name = open_temp_file(dest)
    temp_path = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            stream_url(url, out, settings, label=dest.name)
        verify_checksum(temp_path, settings)
        os.chmod(temp_path, 0o644)
        if dest.is_symlink():  # as saving.atomic_write: a link is never replaced or written through
            raise DatasetError(
                f"{dest} is a symbolic link; cnnlab does not replace links: remove it"
            )
        os.replace(temp_path, dest)
    except OSError as error:
        raise DatasetError(f"{dest}: cannot write the downloaded file: {error}") from None
    finally:
        temp_path.unlink(missing_ok=True)


def open_temp_file(dest: Path) -> tuple[int, str]:
    """A new hidden ``.<name>.<random>.part`` file in the destination folder."""
    try:
        return tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as error:
        raise DatasetError(f"{dest.parent}: cannot write into the folder: {error}") from None


def stream_url(url: str, out: BinaryIO, settings: DownloadSettings, label: str) -> None:
    """Copy the body of ``url`` into ``out``; a body shorter than Content-Length is refused."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    except ValueError as error:
        raise PermanentFailure(f"invalid URL: {error}") from None
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            expected = content_length(response)
            check_announced_size(expected, settings.size)
            with progress_reporter(label, expected, settings.progress) as advance:
                received = copy_body(response, out, advance, settings.size)
    except urllib.error.HTTPError as error:
        error.close()
        raise http_failure(error) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, socket.gaierror):  # offline, or no such host: no retry
            raise PermanentFailure(f"cannot resolve the host name: {error.reason}") from None
        raise TransientFailure(describe_network_error(error)) from None
    except (OSError, http.client.HTTPException) as error:
        raise TransientFailure(describe_network_error(error)) from None
    if expected is not None and received < expected:
        raise TransientFailure(
            f"interrupted transfer: connection closed after {received} of {expected} bytes"
        )


def copy_body(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    advance: Callable[[int], None],
    size: int | None = None,
) -> int:
    """Copy the response body in chunks; return the number of bytes received.

    A body longer than ``size`` bytes (when given) is refused as soon as it exceeds it.
    """
    received = 0
    while chunk := read_chunk(response):
        received += len(chunk)
        if size is not None and received > size:
            raise PermanentFailure(f"wrong size: the server sent more than {size} bytes")
        write_chunk(out, chunk)
        advance(len(chunk))
    return received


def check_announced_size(announced: int | None, size: int | None) -> None:
    """Refuse a response whose Content-Length is not the expected file size."""
    if announced is not None and size is not None and announced != size:
        raise PermanentFailure(f"wrong size: the server announced {announced} bytes, not {size}")


def read_chunk(response: http.client.HTTPResponse) -> bytes:
    """The next chunk of the body (network faults become :class:`TransientFailure`)."""
    try:
        return response.read(CHUNK_SIZE)
    except (OSError, http.client.HTTPException) as error:
        raise TransientFailure(describe_network_error(error)) from None


def write_chunk(out: BinaryIO, chunk: bytes) -> None:
    """Write to the temporary file; a local fault (disk full) is no mirror's fault."""
    try:
        out.write(chunk)
    except OSError as error:
        raise DatasetError(f"{out.name}: cannot write the download: {error}") from None


def content_length(response: http.client.HTTPResponse) -> int | None:
    """The Content-Length the server announced, or None."""
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def http_failure(error: urllib.error.HTTPError) -> Exception:
    """HTTP 408, 429 and 5xx are worth retrying; other 4xx are not."""
    message = f"HTTP {error.code} {error.reason}"
    if error.code in (408, 429) or error.code >= 500:
        return TransientFailure(message)
    return PermanentFailure(message)


def describe_network_error(error: BaseException) -> str:
    """A short human description of a connection fault."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, str):
        error = error.reason
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"connection failed: {error}" if str(error) else f"connection failed: {error!r}"


def verify_checksum(path: Path, settings: DownloadSettings) -> None:
    """Compare the file's SHA-256 (of its gunzipped content if asked) with the expected one."""
    if settings.sha256 is None:
        return
    actual = sha256_of_file(path, decompress=settings.decompressed_sha256)
    if actual != settings.sha256:
        content = "uncompressed content" if settings.decompressed_sha256 else "file"
        raise PermanentFailure(
            f"checksum mismatch: SHA-256 of the {content} is {actual}, expected {settings.sha256}"
        )


def sha256_of_file(path: str | os.PathLike[str], *, decompress: bool = False) -> str:
    """Hex SHA-256 of a file, or of its gunzipped content when ``decompress``."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") if decompress else open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise PermanentFailure(f"not valid gzip data ({error})") from None
    return digest.hexdigest()


@contextlib.contextmanager
def progress_reporter(
    label: str, total: int | None, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n_bytes)``: a rich bar (bytes, speed) on a terminal, else a no-op."""
    if not enabled:
        yield lambda n_bytes: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n_bytes: None
        return
    from rich import progress

    columns = (
        progress.TextColumn("{task.description}"),
        progress.BarColumn(),
        progress.DownloadColumn(),
        progress.TransferSpeedColumn(),
        progress.TimeRemainingColumn(),
    )
    with progress.Progress(*columns, console=console) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n_bytes: bar.advance(task, n_bytes)
