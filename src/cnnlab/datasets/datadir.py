"""Where datasets live on disk: ``<data dir>/<dataset name>/``.

The data directory is, in order of precedence, the ``data_dir`` argument (the command
line's ``--data-dir``), the environment variable ``CNNLAB_DATA_DIR``, or ``~/.cache/cnnlab``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CNNLAB_DATA_DIR"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory: ``data_dir``, else ``$CNNLAB_DATA_DIR``, else ``~/.cache/cnnlab``.

    ``~`` is expanded; the folder is not created here (a download creates it when needed).
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "cnnlab"


def dataset_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of one dataset: ``<data dir>/<name>/``."""
    return resolve_data_dir(data_dir) / name
