"""The lab's playground (seed 000, live): a small dense network learns a 2-D function while the page
watches.

One :class:`Playground` per page: its settings (all in the page's URL), its sampled points,
its model and a training thread. The thread trains in chunks of about
``CHUNK_SECONDS`` and, after each, stores one update (the predicted region on a grid,
the train and test loss and accuracy, what each neuron of the first hidden layers
computes over the plane) as a JSON string the server pushes to the page.

The network sees the points scaled to the unit square, as ``cnnlab approx`` does
(:class:`cnnlab.approx.InputEncoder`), so that "Save as run" writes a normal approx run
directory that ``cnnlab report`` redraws.

Its settings live in ``playground_settings.py`` and the equivalent Keras program in
``playground_code.py``; both names are importable from here.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import approx, models, runs
from ..datasets import function2d
from ..engine import optimizers
from ..engine.batches import steps_per_epoch
from ..errors import CnnlabError
from ..utils import to_categorical
from .playground_code import export_code
from .playground_settings import HIDDEN_ACTIVATIONS, PlaygroundSettings

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "Playground",
    "PlaygroundSettings",
    "b64",
    "export_code",
    "to_bytes",
]

GRID = 64  # the predicted region is GRID x GRID
NEURON_GRID = 32  # each neuron's heatmap is NEURON_GRID x NEURON_GRID (every other grid point)
TRUTH_GRID = 128  # the original function is drawn at this resolution
CHUNK_SECONDS = 0.06  # training time between two updates
MAX_NEURON_LAYERS = 2  # heatmaps of the first hidden layers only
MAX_CURVE_POINTS = 400  # points of each curve sent to the page
EVAL_POINTS = 2000  # the training loss is measured on at most this many points


def b64(values: np.ndarray) -> str:
    """A uint8 array as base64 text (the page decodes it into pixels)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.uint8).tobytes()).decode()


def to_bytes(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values in [low, high] -> uint8 0..255 (clipped)."""
    scale = 255 / (high - low) if high > low else 0.0
    return np.clip(np.rint((values - low) * scale), 0, 255).astype(np.uint8)


class Playground:
    """A network, its data and its training thread, for one page."""

    def __init__(self, settings: PlaygroundSettings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.function = function2d.get_function(settings.function)
        if self.function.kind == "classification" and len(self.function.classes) > 10:
            raise CnnlabError(
                f"function {settings.function!r} has {len(self.function.classes)} classes; "
                "the playground shows at most 10"
            )
        (self.x_train, self.y_train), (self.x_test, self.y_test) = function2d.make_dataset(
            self.function,
            settings.samples,
            noise=settings.noise,
            test_fraction=settings.test_fraction,
            seed=settings.seed,
        )
        if len(self.x_train) < settings.batch_size:
            raise CnnlabError(
                f"batch size {settings.batch_size} is larger than the {len(self.x_train)} "
                "training points"
            )
        self.encoder = approx.InputEncoder(self.function.domain)
        self.inputs_train, self.inputs_test = (
            self.encoder.encode(self.x_train),
            self.encoder.encode(self.x_test),
        )
        self.targets_train = self.targets(self.y_train)
        self.targets_test = self.targets(self.y_test)
        _, _, points = approx.grid_points(self.function.domain, GRID)
        self.grid_inputs = self.encoder.encode(points)
        self.truth = self.function.targets(approx.grid_points(self.function.domain, TRUTH_GRID)[2])
        self.running, self.stopped = False, False
        self.version, self.latest = 0, ""
        self.thread: threading.Thread | None = None
        self.reset()

    # ------------------------------------------------------------------ model
    @property
    def regression(self) -> bool:
        return self.function.kind == "regression"

    @property
    def outputs(self) -> int:
        return 1 if self.regression else len(self.function.classes)

    def targets(self, y: np.ndarray) -> np.ndarray:
        return (
            y.reshape(-1, 1).astype(np.float32)
            if self.regression
            else to_categorical(y, self.outputs)
        )

    def model_config(self) -> dict[str, Any]:
        """InputLayer(2) - Dense(units, activation) per hidden layer - [Dropout] -
        Dense(classes, softmax)."""
        s = self.settings
        layers = [
            models.dense(f"dense_{i}" if i else "dense", units, s.activation)
            for i, units in enumerate(s.units())
        ]
        if s.dropout:
            layers.append(models.layer("Dropout", "dropout", rate=s.dropout))
        name = f"dense_{len(s.units())}" if s.units() else "dense"
        layers.append(models.dense(name, self.outputs, "linear" if self.regression else "softmax"))
        input_layer = {
            "class_name": "InputLayer",
            "config": {"name": "input_layer", "batch_shape": [None, 2]},
        }
        return {"name": "playground", "layers": [input_layer, *layers]}

    def reset(self) -> None:
        """The same initial weights, data order and history as at the start
        (the seed decides them all)."""
        with self.lock:
            s = self.settings
            self.model = models.build_model(self.model_config(), self.outputs, s.seed)
            self.model.compile(
                optimizer=optimizers.get(s.optimizer, s.learning_rate),
                loss="mse" if self.regression else "categorical_crossentropy",
                metrics=[] if self.regression else ["accuracy"],
            )
            self.order_rng = np.random.default_rng(s.seed)
            self.order, self.position, self.epoch, self.steps = (
                self.order_rng.permutation(len(self.x_train)),
                0,
                0,
                0,
            )
            self.history: dict[str, list[float]] = {
                "epoch": [],
                "loss": [],
                "accuracy": [],
                "test_loss": [],
                "test_accuracy": [],
            }
            self.epoch_history: dict[str, list[float]] = {"loss": [], "accuracy": []}
            self.epoch_seconds: list[float] = []
            self.epoch_started, self.train_seconds = 0.0, 0.0
            self.snapshots = [(0, self.predict_snapshot())]
            self.publish()

    # ------------------------------------------------------------------ training
    def train_batches(self, seconds: float, until_epoch_end: bool = False) -> None:
        """Train for about ``seconds`` (or to the end of the epoch), one batch at a time."""
        started = time.perf_counter()
        with self.lock:
            while True:
                batch = self.order[self.position : self.position + self.settings.batch_size]
                self.model.train_on_batch(self.inputs_train[batch], self.targets_train[batch])
                self.position += self.settings.batch_size
                self.steps += 1
                if self.position >= len(self.order):
                    self.end_epoch(started)
                    if until_epoch_end:
                        break
                if not until_epoch_end and time.perf_counter() - started >= seconds:
                    break
            self.train_seconds += time.perf_counter() - started
            self.publish()

    def end_epoch(self, started: float) -> None:
        self.epoch += 1
        self.order, self.position = self.order_rng.permutation(len(self.x_train)), 0
        logs = self.evaluate(self.inputs_train, self.targets_train)
        for key in self.epoch_history:
            if key in logs:
                self.epoch_history[key].append(logs[key])
        self.epoch_seconds.append(
            max(self.train_seconds + time.perf_counter() - started - self.epoch_started, 0.0)
        )
        self.epoch_started = self.train_seconds + time.perf_counter() - started
        if self.epoch & (self.epoch - 1) == 0:  # snapshots at epochs 1, 2, 4, 8, ...
            self.snapshots.append((self.epoch, self.predict_snapshot()))

    def evaluate(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        logs = self.model.evaluate(
            inputs[:EVAL_POINTS],
            targets[:EVAL_POINTS],
            batch_size=1024,
            verbose=0,
            return_dict=True,
        )
        return {key: float(value) for key, value in logs.items()}

    def predict_snapshot(self) -> np.ndarray:
        _, _, points = approx.grid_points(self.function.domain, approx.SNAPSHOT_RESOLUTION)
        return self.model.predict(self.encoder.encode(points), batch_size=4096, verbose=0)

    def step(self) -> None:
        """One epoch (the Step button)."""
        self.train_batches(0.0, until_epoch_end=True)

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        with self.lock:
            self.running = True
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.loop, name="cnnlab-playground", daemon=True
                )
                self.thread.start()

    def pause(self) -> None:
        self.running = False

    def stop(self) -> None:
        self.running, self.stopped = False, True

    def loop(self) -> None:
        """Train chunk after chunk until paused; the thread ends under the lock, so that start()
        never misses it."""
        while True:
            with self.lock:
                if not self.running or self.stopped:
                    self.thread = None
                    break
            try:
                self.train_batches(CHUNK_SECONDS)
            except Exception as err:  # a diverged network: show it, stop training
                with self.lock:
                    self.running, self.thread = False, None
                    self.publish(error=str(err))
                return
        if not self.stopped:
            self.publish()  # the page learns that training paused

    # ------------------------------------------------------------------ updates
    def publish(self, error: str | None = None) -> None:
        """Compute the update the page shows and store it (as JSON) with a new version number."""
        with self.lock:
            update = self.update()
            if error:
                update["error"] = error
            self.latest = json.dumps(update)
            self.version += 1

    def update(self) -> dict[str, Any]:
        trace = self.model.feature_maps(self.grid_inputs)
        output = trace[-1][1]
        train = self.evaluate(self.inputs_train, self.targets_train)
        test = self.evaluate(self.inputs_test, self.targets_test)
        if len(self.history["epoch"]) >= MAX_CURVE_POINTS:  # long runs: keep every other point
            self.history = {key: values[::2] for key, values in self.history.items()}
        self.history["epoch"].append(self.epoch + self.position / len(self.order))
        for name, logs in (("", train), ("test_", test)):
            self.history[name + "loss"].append(logs["loss"])
            self.history[name + "accuracy"].append(logs.get("accuracy", float("nan")))
        return {
            "version": self.version + 1,
            "epoch": self.epoch,
            "steps": self.steps,
            "running": self.running,
            "loss": train["loss"],
            "accuracy": train.get("accuracy"),
            "test_loss": test["loss"],
            "test_accuracy": test.get("accuracy"),
            "history": {
                k: [None if math.isnan(v) else round(v, 5) for v in vs]
                for k, vs in self.history.items()
            },
            "region": self.region(output),
            "neurons": self.neurons(trace),
        }

    def region(self, output: np.ndarray) -> dict[str, Any]:
        """The predicted region: probability of class 1 (two classes), class index and confidence,
        or value."""
        if self.regression:
            low, high = float(self.truth.min()), float(self.truth.max())
            return {"mode": "value", "values": b64(to_bytes(output[:, 0], low, high))}
        if output.shape[1] == 2:
            return {"mode": "probability", "values": b64(to_bytes(output[:, 1], 0.0, 1.0))}
        return {
            "mode": "classes",
            "values": b64(output.argmax(axis=1)),
            "confidence": b64(to_bytes(output.max(axis=1), 0.0, 1.0)),
        }

    def neurons(self, trace: list[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
        """Each neuron of the first hidden layers over the plane: 128 is 0, 0 and 255 are -/+ its
        largest |value|."""
        hidden = [(name, out) for name, out in trace[:-1] if name.startswith("dense")][
            :MAX_NEURON_LAYERS
        ]
        shown = []
        step = GRID // NEURON_GRID
        for name, out in hidden:
            out = out.reshape(GRID, GRID, -1)[::step, ::step].reshape(NEURON_GRID * NEURON_GRID, -1)
            scale = np.abs(out).max(axis=0) + 1e-12  # (units,)
            maps = to_bytes(out / scale, -1.0, 1.0).T  # (units, NEURON_GRID**2)
            shown.append({"layer": name, "units": out.shape[1], "values": b64(maps)})
        return shown

    def setup(self) -> dict[str, Any]:
        """What does not change while training: the function, its grid, the test points
        (scaled to [0, 1])."""
        truth = self.truth
        if self.regression:
            truth_bytes = to_bytes(truth, float(truth.min()), float(truth.max()))
        else:
            truth_bytes = (
                truth.astype(np.uint8) if len(self.function.classes) > 2 else to_bytes(truth, 0, 1)
            )
        test = self.encoder.scale(self.x_test)
        labels = (
            self.y_test
            if not self.regression
            else to_bytes(self.y_test, float(truth.min()), float(truth.max()))
        )
        return {
            "settings": asdict(self.settings),
            "grid": GRID,
            "neuron_grid": NEURON_GRID,
            "truth_grid": TRUTH_GRID,
            "kind": self.function.kind,
            "classes": [f"{c:g}" for c in self.function.classes],
            "formula": self.function.formula,
            "domain": self.function.domain,
            "truth": b64(truth_bytes),
            "test_points": np.round(test, 4).tolist(),
            "test_labels": np.asarray(labels).astype(int).tolist(),
            "params": self.model.count_params(),
            "batches_per_epoch": steps_per_epoch(len(self.x_train), self.settings.batch_size),
        }

    # ------------------------------------------------------------------ save and export
    def save_run(self, run_dir: Path) -> Path:
        """Write the current model as an approx run directory
        (config, model, history, metrics, figures, report)."""
        with self.lock:
            problem = self.approx_problem()
            test_output = self.model.predict(self.inputs_test, batch_size=4096, verbose=0)
            snapshots = self.snapshots_until_now()
            metrics = approx.test_metrics(problem, test_output, self.epoch_seconds)
            arrays = approx.field_arrays(problem, test_output, snapshots)
            metrics["grid_error"] = self.grid_error(arrays)
            history = {k: v for k, v in self.epoch_history.items() if v}
            result = approx.ApproxResult(
                metrics, history, list(self.epoch_seconds), arrays, runs.prepare_run_dir(run_dir)
            )
            approx.write_run(problem, result)
            return result.run_dir

    def approx_problem(self) -> approx.ApproxProblem:
        """The playground as the problem ``cnnlab approx`` would have set up: its settings, data,
        input encoder and model."""
        s = self.settings
        return approx.ApproxProblem(
            approx.ApproxSettings(
                function=s.function,
                samples=s.samples,
                noise=s.noise,
                test_fraction=s.test_fraction,
                validation_split=0.0,
                model="playground",
                epochs=max(self.epoch, 1),
                batch_size=s.batch_size,
                optimizer=s.optimizer,
                learning_rate=s.learning_rate,
                seed=s.seed,
            ),
            self.function,
            self.encoder,
            self.x_train,
            self.y_train,
            self.x_test,
            self.y_test,
            self.model,
            self.model_config(),
        )

    def snapshots_until_now(self) -> list[tuple[int, np.ndarray]]:
        """The boundary snapshots taken so far, and one of the current epoch when it has none."""
        if self.snapshots[-1][0] == self.epoch:
            return list(self.snapshots)
        return [*self.snapshots, (self.epoch, self.predict_snapshot())]

    def grid_error(self, arrays: dict[str, np.ndarray]) -> float:
        """The mean error of the predicted field over the grid (as ``cnnlab approx`` reports it)."""
        from .. import plots

        return float(
            plots.approx_errors(
                arrays["grid_predicted"], arrays["grid_truth"], self.function.num_classes
            ).mean()
        )

    def export_code(self) -> str:
        """An equivalent Keras program
        (runs on Keras 3 or, with ``from cnnlab import keras``, on cnnlab's engine)."""
        return export_code(self.settings, self.regression, self.outputs, max(self.epoch, 1))
