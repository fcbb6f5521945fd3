"""`cnnlab run PROGRAM.py` and the `cnnlab.keras` namespace.

Every program of tests/programs/ runs unmodified through `cnnlab run` (in-process, cli.main):
exit 0, the engine named on the first line, a `TEST_ACCURACY x` line above a floor. Where Keras 3
is installed the same program runs with `--engine keras` (real Keras on PyTorch, the same MNIST
slice from the data directory, the same epochs) and the two final accuracies must agree within
ACCURACY_TOLERANCE.

Why 0.08: the engines start from different random weights and draw different dropout masks
and batch orders, so their results differ by more than measurement noise. Measurement noise
alone: 1,000 test images at an accuracy near 0.83 give a binomial standard error of 0.012 per
run, 0.017 for the difference of two runs; small models trained for 3 epochs on 2,000 images also
vary from seed to seed (0.01-0.03 between the two engines in the runs written down when these
programs were made). 0.08 is about 4.5 standard errors of the noise: a broken loss, optimizer
or layer (accuracy near 0.1-0.5) still fails it. The floor catches what both sides could share.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlab import cli
from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.mnist import find_local_copy
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.reference.keras import keras_available

PROGRAMS = Path(__file__).parent / "programs"
ACCURACY_TOLERANCE = 0.08
FIRST_LINE = "cnnlab: running {program} on the cnnlab NumPy engine (keras -> cnnlab.keras)"

# program -> (accuracy floor, runs on real Keras 3 too?, lines the program must print)
CASES: dict[str, tuple[float, bool, tuple[str, ...]]] = {
    "import_keras.py": (0.6, True, ()),
    "from_keras_layers.py": (0.6, True, ()),
    "from_tensorflow_import_keras.py": (0.6, True, ("epochs run: 3",)),
    "tf_keras.py": (
        0.6,
        False,
        ("first probabilities sum to 1.0", "softmax of [2, 1, 0.1]: [0.659, 0.2424, 0.0986]"),
    ),
    "star_import.py": (0.5, True, ()),
    "keras2_style.py": (0.6, False, ()),
    "callbacks_early_stopping.py": (0.6, True, ("CHECKPOINT_SAVED True",)),
    "custom_callback_stop.py": (0.2, False, ("BATCHES_SEEN 25", "EPOCHS_RUN 1")),
    "from_logits.py": (0.6, True, ("logits, not probabilities: True",)),
    "functional_residual.py": (0.6, True, ()),
    "batchnorm.py": (0.6, True, ()),
    "tf_quickstart.py": (0.6, False, ("rows sum to 1: True",)),
}
# Not on Keras 3: keras2_style is a Keras 2 program
# (Keras 3 refuses `lr=` and keras.layers.convolutional); tf_keras and tf_quickstart call `.numpy()`
# on `model(x)`, which Keras 3's torch backend returns as a tensor that requires grad
# (TensorFlow's eager tensors allow it); custom_callback_stop stops after 25 batches by design, so
# its accuracy says little, and the printed batch and epoch counts are what it checks.

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.fixture(scope="module")
def mnist_available() -> None:
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["run", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def accuracy_of(out: str) -> float:
    match = re.search(r"^TEST_ACCURACY (\d\.\d+)$", out, re.MULTILINE)
    assert match, f"no TEST_ACCURACY line in:\n{out[-2000:]}"
    return float(match.group(1))


def test_every_program_has_a_case():
    assert sorted(CASES) == sorted(p.name for p in PROGRAMS.glob("*.py"))


# Waiting for the engine: a loss called on arrays returns a float, Keras a tensor that answers
# .numpy().
ENGINE_GAPS: dict[str, str] = {}  # program -> why the engine cannot run it yet


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=ENGINE_GAPS[name]))
        if name in ENGINE_GAPS
        else name
        for name in sorted(CASES)
    ],
)
def test_program_runs_on_the_engine(name, mnist_available, capsys, tmp_path):
    floor, _, lines = CASES[name]
    program = str(PROGRAMS / name)
    code, out, err = run(capsys, program, str(tmp_path))
    assert code == 0, f"{name} exited {code}:\n{out[-3000:]}\n{err[-3000:]}"
    assert err.splitlines()[0] == FIRST_LINE.format(program=program)
    assert accuracy_of(out) >= floor
    for line in lines:
        assert line in out.splitlines(), f"{name} did not print {line!r}:\n{out[-2000:]}"


@pytest.mark.torch
@pytest.mark.parametrize(
    "name", sorted(name for name, (_, on_keras, _) in CASES.items() if on_keras)
)
def test_program_reaches_the_accuracy_of_keras(name, mnist_available, capsys, tmp_path):
    if not keras_available():
        pytest.skip("Keras 3 is not installed")
    program = str(PROGRAMS / name)
    code, out, err = run(capsys, "--engine", "keras", program, str(tmp_path / "keras"))
    assert code == 0, f"{name} on Keras exited {code}:\n{out[-3000:]}\n{err[-3000:]}"
    assert re.match(
        rf"cnnlab: running {re.escape(program)} on Keras 3\.\S+ on its torch backend", err
    )
    keras_accuracy = accuracy_of(out)
    code, out, err = run(capsys, program, str(tmp_path))
    assert code == 0, f"{name} exited {code}:\n{out[-3000:]}\n{err[-3000:]}"
    assert abs(accuracy_of(out) - keras_accuracy) <= ACCURACY_TOLERANCE, (
        accuracy_of(out),
        keras_accuracy,
    )
    assert keras_accuracy >= CASES[name][0]


# --------------------------------------------------------------------------- the namespace
KERAS_MODULES = [
    "cnnlab.keras",
    "cnnlab.keras.layers",
    "cnnlab.keras.layers.core",
    "cnnlab.keras.layers.convolutional",
    "cnnlab.keras.layers.pooling",
    "cnnlab.keras.models",
    "cnnlab.keras.optimizers",
    "cnnlab.keras.optimizers.legacy",
    "cnnlab.keras.losses",
    "cnnlab.keras.metrics",
    "cnnlab.keras.callbacks",
    "cnnlab.keras.datasets",
    "cnnlab.keras.datasets.mnist",
    "cnnlab.keras.datasets.fashion_mnist",
    "cnnlab.keras.datasets.cifar10",
    "cnnlab.keras.utils",
    "cnnlab.keras.utils.np_utils",
    "cnnlab.keras.backend",
    "cnnlab.keras.config",
    "cnnlab.keras.initializers",
    "cnnlab.keras.activations",
    "cnnlab.keras.regularizers",
]


@pytest.mark.parametrize("path", KERAS_MODULES)
def test_each_keras_path_is_a_real_module(path):
    module = importlib.import_module(path)
    assert module.__name__ == path and sys.modules[path] is module


def test_layers_come_from_the_engine_registry():
    from cnnlab.engine import layers as engine_layers
    from cnnlab.keras import layers

    assert set(engine_layers.LAYER_CLASSES) <= set(layers.__all__)
    for name, cls in engine_layers.LAYER_CLASSES.items():
        assert getattr(layers, name) is cls
        assert getattr(importlib.import_module("cnnlab.keras.layers.core"), name) is cls
    assert layers.Input is engine_layers.Input and layers.Layer is engine_layers.Layer


def test_a_layer_registered_later_appears_without_an_edit():
    from cnnlab.engine.layers import LAYER_CLASSES, Layer, register
    from cnnlab.keras import layers

    @register
    class Doubling(Layer):
        def forward(self, x, training=False):
            return 2 * x

    try:
        assert layers.Doubling is Doubling and "Doubling" in dir(layers)
    finally:
        del LAYER_CLASSES["Doubling"]
    with pytest.raises(UnsupportedKerasFeature):
        _ = layers.Doubling


def test_the_keras_names_programs_use():
    from cnnlab import engine, keras
    from cnnlab.engine import callbacks, optimizers
    from cnnlab.keras.callbacks import EarlyStopping
    from cnnlab.keras.layers import Conv2D, Dense

    assert keras.Sequential is engine.Sequential and keras.models.load_model is engine.load_model
    assert (
        keras.optimizers.Adam is optimizers.Adam and keras.optimizers.legacy.Adam is optimizers.Adam
    )
    assert (
        EarlyStopping is callbacks.EarlyStopping
        and Dense is keras.layers.Dense
        and Conv2D is keras.layers.Conv2D
    )
    assert keras.utils.to_categorical([0, 2]).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert keras.utils.np_utils.to_categorical is keras.utils.to_categorical
    assert keras.backend.image_data_format() == "channels_last" and keras.backend.epsilon() == 1e-7
    assert (
        keras.backend.floatx() == "float32" and keras.config.image_data_format() == "channels_last"
    )
    keras.backend.set_image_data_format("channels_last")
    assert keras.datasets.mnist.load_data.__module__ == "cnnlab.datasets.mnist"
    assert keras.activations.relu([-1.0, 2.0]).numpy().tolist() == [0.0, 2.0]
    assert keras.__version__.startswith("3.") and keras.version() == keras.__version__


def keras_module(name: str):
    return importlib.import_module(f"cnnlab.keras.{name}" if name else "cnnlab.keras")


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (
            lambda: keras_module("layers").LSTM,
            r"^keras\.layers\.LSTM is not supported by cnnlab; supported layers: .*Conv2D",
        ),
        (
            lambda: keras_module("").applications,
            r"^keras\.applications is not supported by cnnlab; .*modules: .*layers",
        ),
        (
            lambda: keras_module("regularizers").l2,
            r"^keras\.regularizers\.l2 is not supported by cnnlab; supported regularizers: none",
        ),
        (
            lambda: keras_module("backend").set_image_data_format("channels_first"),
            r"channels_first.*channels_last",
        ),
        (
            lambda: keras_module("utils").plot_model(None),
            r"plot_model is not supported by cnnlab; use model\.summary",
        ),
    ],
    ids=["layer", "module", "regularizer", "channels_first", "plot_model"],
)
def test_a_keras_name_cnnlab_lacks_fails_with_one_line(use, message):
    with pytest.raises(UnsupportedKerasFeature, match=message) as error:
        use()
    assert "\n" not in str(error.value)


def test_dunder_probes_stay_attribute_errors():
    from cnnlab.keras import layers

    assert not hasattr(layers, "__wrapped__")
    assert "Dense" in layers.__all__ and "Dense" in dir(layers)


def test_import_cnnlab_as_keras():
    import cnnlab as keras

    assert keras.layers.Dense.__name__ == "Dense"
    assert keras.datasets.mnist.load_data is not None and keras.utils.to_categorical([1]).shape == (
        1,
        2,
    )
    assert keras.backend.image_data_format() == "channels_last"


# --------------------------------------------------------------------------- cnnlab run itself
def write(tmp_path: Path, text: str, name: str = "program.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_the_program_gets_its_argv_name_and_the_same_modules(capsys, tmp_path):
    program = write(
        tmp_path,
        """
        import sys
        import keras
        import tensorflow as tf
        import tensorflow.keras.layers
        from tensorflow import keras as tf_keras
        from tensorflow.python import keras as old_keras
        print(sys.argv[1:], __name__)
        print(
            keras.layers is tf.keras.layers is tensorflow.keras.layers,
            keras is tf_keras is old_keras,
        )
    """,
    )
    code, out, err = run(capsys, program, "--epochs", "3", "-v")
    assert code == 0, err
    assert out.splitlines() == ["['--epochs', '3', '-v'] __main__", "True True"]
    assert err.splitlines()[0] == FIRST_LINE.format(program=program)


def test_the_hook_is_removed_and_modules_restored_after_a_run(capsys, tmp_path):
    before_meta_path, before_argv = list(sys.meta_path), list(sys.argv)
    code, _, err = run(capsys, write(tmp_path, "import keras, tensorflow\n"))
    assert code == 0, err
    assert sys.meta_path == before_meta_path and sys.argv == before_argv
    assert "tensorflow" not in sys.modules
    assert sys.modules.get("keras") is None or sys.modules["keras"].__name__ == "keras"


def test_the_program_exit_code_is_its_own(capsys, tmp_path):
    assert run(capsys, write(tmp_path, "import sys\nsys.exit(3)\n"))[0] == 3
    assert run(capsys, write(tmp_path, "raise SystemExit()\n"))[0] == 0
    code, _, err = run(capsys, write(tmp_path, "import sys\nsys.exit('bad input file')\n"))
    assert code == 1 and err.splitlines()[-1] == "bad input file"


def test_an_error_in_the_program_shows_its_own_traceback(capsys, tmp_path):
    program = write(
        tmp_path,
        """
        def load():
            raise ValueError("the program's own error")
        load()
    """,
    )
    code, _, err = run(capsys, program)
    lines = err.splitlines()
    assert code == 1
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2] == f'  File "{program}", line 4, in <module>'
    assert lines[-1] == "ValueError: the program's own error"
    assert "runpy" not in err and "keras_run" not in err


def test_unsupported_keras_names_fail_with_one_line_and_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, write(tmp_path, "from keras.layers import LSTM\n"))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 2
    assert re.match(
        r"cnnlab: keras\.layers\.LSTM is not supported by cnnlab; supported layers: .*Dense",
        err.splitlines()[1],
    )
    code, _, err = run(
        capsys,
        write(tmp_path, "import tensorflow as tf\ntf.data.Dataset.from_tensor_slices([1])\n"),
    )
    assert code == 2
    assert re.fullmatch(
        r"cnnlab: tf\.data is TensorFlow, not Keras; cnnlab runs Keras programs "
        r"\(supported tf names: keras, .*nn\.softmax.*\)",
        err.splitlines()[1],
    )
    code, _, err = run(capsys, write(tmp_path, "import keras.applications\n"))
    assert code == 2 and "keras.applications is not supported by cnnlab" in err.splitlines()[1]


def test_the_programs_own_options_are_not_cnnlabs(capsys, tmp_path):
    program = write(tmp_path, "import sys\nprint(sys.argv[1:])\n")
    code, out, _ = run(capsys, program, "--debug", "--help", "--engine", "x")
    assert code == 0 and out.splitlines() == ["['--debug', '--help', '--engine', 'x']"]


@pytest.mark.parametrize(
    ("name", "message"), [("missing.py", "file not found"), ("notes.txt", "not a Python program")]
)
def test_a_missing_or_non_python_file_is_one_line(name, message, capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    code, out, err = run(capsys, str(tmp_path / name))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and message in err


def test_the_programs_warnings_are_its_own(capsys, tmp_path):
    program = write(
        tmp_path, "import warnings\nwarnings.warn('old API', DeprecationWarning)\nprint('done')\n"
    )
    code, out, err = run(
        capsys, program
    )  # pytest turns warnings into errors; the program's are shown
    assert code == 0 and out == "done\n" and "DeprecationWarning: old API" in err


def test_tf_helpers_compute_with_numpy(capsys, tmp_path):
    program = write(
        tmp_path,
        """
        import numpy as np
        import tensorflow as tf
        x = tf.constant([[1.0, 3.0], [4.0, 2.0]])
        print(tf.argmax(x, axis=1).numpy().tolist(), float(tf.reduce_mean(x).numpy()),
              tf.reduce_sum(x, axis=0).tolist())
        print(tf.cast(x, tf.int32).dtype, tf.expand_dims(x, -1).shape,
              tf.one_hot([0, 2], 3).numpy().tolist())
        image = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
        print(tf.image.resize(image, (4, 4)).numpy()[0, :, :, 0].tolist())
        print(tf.config.list_physical_devices("GPU"), tf.executing_eagerly())
    """,
    )
    code, out, err = run(capsys, program)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "[1, 0] 2.5 [5.0, 5.0]"
    assert lines[1] == "int32 (2, 2, 1) [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]"
    # TensorFlow 2's bilinear resize (half-pixel centres) of [[0, 1], [2, 3]] to 4x4
    assert lines[2] == str(
        [
            [0.0, 0.25, 0.75, 1.0],
            [0.5, 0.75, 1.25, 1.5],
            [1.5, 1.75, 2.25, 2.5],
            [2.0, 2.25, 2.75, 3.0],
        ]
    )
    assert lines[3] == "[] True"
