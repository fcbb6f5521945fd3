"""ruff, configured in pyproject.toml ([tool.ruff]), passes on the whole repository: the lint rules
and the formatting. The README's test command runs pytest, so CI checks lint through this file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed (pip install -e '.[dev]')",
)


def ruff(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m ruff ARGUMENTS`` in the repository root, with this interpreter's ruff."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_check_passes():
    result = ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}{result.stderr}"


def test_ruff_format_leaves_every_file_as_it_is():
    result = ruff("format", "--no-cache", "--check", "--diff", ".")
    assert result.returncode == 0, (
        f"ruff format would change files:\n{result.stdout}{result.stderr}"
    )
