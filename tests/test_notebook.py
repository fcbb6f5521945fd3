"""cnnlab in Jupyter (issue 17): the progress bar redraws in place in a notebook, the plot functions
return figures that display inline, and examples/seed_notebook.ipynb runs start to end in a real
kernel (nbclient), its figures there as image/png outputs."""

from __future__ import annotations

import io
import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from cnnlab import plots
from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.mnist import find_local_copy
from cnnlab.engine import callbacks as cb

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "seed_notebook.ipynb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The code cells that draw a figure, by a phrase of their source, in notebook order.
FIGURE_CELLS = [
    "plot_sample_grid",
    "plot_class_distribution",
    "plot_history",
    "plot_confusion_matrix",
    "plot_filters",
]


# ---------------------------------------------------------------------- the progress bar rule
def run_bar(steps: int = 5) -> None:
    """A verbose=1 bar of ``steps`` steps on sys.stdout, redrawn after every step (interval 0)."""
    bar = cb.Progbar(steps, interval=0.0)
    for step in range(1, steps + 1):
        bar.update(step, [("loss", 1.0 / step)])


def test_in_jupyter_the_bar_is_redrawn_in_place_like_keras(monkeypatch):
    out = (
        io.StringIO()
    )  # Jupyter's stdout is not a terminal: Keras redraws because ipykernel is imported
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    run_bar()
    text = out.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n") and text.count("\n") == 1
    assert (
        "\x1b[1m5/5\x1b[0m" in text and "\b" in text
    )  # Keras's colours; the previous line rubbed out


def test_outside_jupyter_a_redirected_bar_writes_the_finished_line_only(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    run_bar()
    assert "\r" not in out.getvalue() and re.fullmatch(
        r"5/5 \S+ 0s .*loss: 0\.2000\n", out.getvalue()
    )


def test_in_jupyter_a_bar_sent_to_another_stream_stays_plain(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    log = io.StringIO()
    bar = cb.Progbar(3, interval=0.0, stream=log)
    for step in (1, 2, 3):
        bar.update(step)
    assert "\r" not in log.getvalue() and log.getvalue().startswith("3/3 ")


# ---------------------------------------------------------------------- figures that display inline
def test_without_a_path_a_plot_returns_its_figure_and_writes_nothing(tmp_path, monkeypatch):
    from IPython.core.formatters import PNGFormatter

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), np.arange(20) % 2
    figures = [
        plots.plot_sample_grid(x, y, ["a", "b"], per_class=3),
        plots.plot_class_distribution(y, y[:6], ["a", "b"]),
        plots.plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}),
        plots.plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"]),
        plots.plot_filters(rng.normal(size=(3, 3, 1, 4))),
        plots.plot_feature_maps([("conv2d", rng.normal(size=(6, 6, 4)))]),
    ]
    assert list(tmp_path.iterdir()) == []
    for figure in figures:
        assert isinstance(figure, plots.NotebookFigure)
        png = PNGFormatter()(figure)  # what IPython's display puts under image/png
        assert png.startswith(PNG_SIGNATURE) and png == figure._repr_png_()


def test_with_a_path_a_plot_still_writes_its_png(tmp_path):
    path = plots.plot_confusion_matrix(
        [[3, 1], [0, 4]], ["a", "b"], tmp_path / "figures" / "cm.png"
    )
    assert path == tmp_path / "figures" / "cm.png" and path.read_bytes().startswith(PNG_SIGNATURE)


# ------------------------------------------------------------------- the notebook in a real kernel
def this_python_kernel(folder: Path) -> object:
    """A kernel manager for this environment's Python (sys.executable), whatever kernels are
    installed."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = folder / "kernels" / "cnnlab-python"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "cnnlab", "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return AsyncKernelManager(kernel_name="cnnlab-python", kernel_spec_manager=specs)


def execute_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    """Run the notebook in a fresh kernel started in ``tmp_path`` with ``env`` added; returns it."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    jupyter = tmp_path / "jupyter"  # connection file and IPython profile here, not in a home folder
    env = {
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "IPYTHONDIR": str(jupyter / "ipython"),
        **env,
    }
    for name, value in env.items():
        monkeypatch.setenv(
            name, value
        )  # the kernel inherits the test's environment (CNNLAB_DATA_DIR too)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        km=this_python_kernel(jupyter),
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(cleanup_kc=True)  # our kernel manager: nbclient stops the kernel only when told
    return notebook


def cell_with(notebook: object, phrase: str) -> object:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and phrase in c.source]
    return cell


def check_ran(notebook: object) -> str:
    """Every code cell ran without error and the figure cells show one PNG each; returns the fit
    output."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    images = [[out for out in cell.outputs if "image/png" in out.get("data", {})] for cell in code]
    assert sum(map(len, images)) == len(FIGURE_CELLS)
    for phrase in FIGURE_CELLS:
        (image,) = [
            out for out in cell_with(notebook, phrase).outputs if "image/png" in out.get("data", {})
        ]
        assert image.data["image/png"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    fit = cell_with(notebook, "model.fit(")
    return "".join(out.text for out in fit.outputs if out.output_type == "stream")


@pytest.mark.slow
def test_the_seed_notebook_runs_with_its_figures_and_a_live_progress_bar(tmp_path, monkeypatch):
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")
    notebook = execute_notebook(tmp_path, monkeypatch)
    bar = check_ran(notebook)
    assert (
        "MNIST (60000, 28, 28) (10000, 28, 28)"
        in cell_with(notebook, "mnist.load_data()").outputs[0].text
    )
    steps = -(-1800 // 32)  # 2,000 images less the validation tenth, batches of 32
    redraws = re.findall(rf"\r\x1b\[1m *(\d+)/{steps}\x1b\[0m ", bar)
    assert len(redraws) >= 2 and redraws[-1] == str(steps) and bar.endswith("\n")
    assert "val_accuracy:" in bar.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "jupyter"
    ]  # the figures were shown, not written


@pytest.mark.slow
def test_without_mnist_the_notebook_falls_back_to_the_bundled_digits(tmp_path, monkeypatch):
    notebook = execute_notebook(
        tmp_path,
        monkeypatch,
        CNNLAB_DATA_DIR=str(tmp_path / "data"),
        CNNLAB_MNIST_MIRRORS="http://127.0.0.1:9/",
    )  # nothing listens: refused at once
    bar = check_ran(notebook)
    loaded = cell_with(notebook, "mnist.load_data()").outputs[0].text
    assert (
        "using the bundled 8x8 digits instead" in loaded
        and "digits (1347, 8, 8) (450, 8, 8)" in loaded
    )
    assert re.search(
        r"\r\x1b\[1m38/38\x1b\[0m ", bar
    )  # 1,347 images less the validation tenth, by 32
