"""``cnnlab compare PROGRAM.py``: a learner's own Keras program on the engine and on Keras 3.

1. **Record.** The program runs unmodified on the NumPy engine (``cnnlab run``'s import hook)
   while a ``Recorder`` watches the first model it trains: the model as ``fit`` starts (config,
   initial weights, compile settings: saved as ``initial.keras``), each ``fit`` call (data,
   batch size, epochs actually run, validation split or data, the state of the shuffling
   generator, the learning rate of each epoch, as callbacks may change it), and the data of
   its last ``evaluate`` (else ``predict``, else its validation data).
2. **Replay.** Real Keras 3 (torch backend) loads ``initial.keras`` (same weights, same
   optimizer, loss and metrics) and trains on the same batches in the same order: each epoch's
   permutation comes from a copy of the engine's generator; each epoch runs with the engine's
   learning rate of that epoch.
3. **Compare.** Both trained models predict the evaluation data; the comparison directory
   holds what ``cnnlab compare`` writes for built-in models (metrics side by side, confusion
   matrices, per-class scores, ROC, agreement, curves, seconds per epoch, memory) and a
   per-layer parity table at the initial weights (each layer's output and its weights'
   gradients on the first batch, dropout off).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from .compare import PeakMemory
from .engine.callbacks import Callback
from .engine.model import Model, split_validation, take
from .errors import CnnlabError

PROGRAM_NOTE = (
    "Identical in both engines: the initial weights (every layer, moving statistics included), "
    "the optimizer, "
    "loss and metrics, the batches and their order in every epoch, and the learning rate of every "
    "epoch. "
    "Not identical: dropout masks and any other random draw during training (each engine draws "
    "its own), "
    "and the order of floating-point sums inside each engine's kernels."
)


@dataclasses.dataclass
class FitCall:
    """One ``fit`` of the recorded model: what it was given and what it did."""

    x: Any
    y: np.ndarray
    batch_size: int
    epochs: int
    shuffle: bool
    validation_split: float
    validation_data: tuple[Any, np.ndarray] | None
    shuffle_rng: np.random.Generator  # a copy, taken before the engine draws its first permutation
    learning_rates: list[float] = dataclasses.field(default_factory=list)
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    memory: int = 0
    stopped_inside_epoch: bool = False


class LearningRateLog(Callback):
    """Notes the optimizer's learning rate as each epoch begins, and whether training was
    stopped inside an epoch (a callback's on_batch_end), which a replay cannot repeat."""

    def __init__(self, record: FitCall) -> None:
        super().__init__()
        self.record = record

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.record.learning_rates.append(float(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        steps = self.params.get("steps") or 0
        if self.model.stop_training and batch + 1 < steps:
            self.record.stopped_inside_epoch = True


class Recorder:
    """Watches ``Model.fit/evaluate/predict`` while a program runs; keeps the first trained
    model."""

    def __init__(self, out_dir: Path, epochs: int | None = None) -> None:
        self.out_dir, self.epochs = out_dir, epochs
        self.model: Model | None = None
        self.fits: list[FitCall] = []
        self.evaluation: tuple[str, Any, np.ndarray | None] | None = None
        self.other_models: set[str] = set()

    @contextlib.contextmanager
    def watching(self) -> Iterator[Recorder]:
        originals = {name: getattr(Model, name) for name in ("fit", "evaluate", "predict")}
        recorder = self

        def fit(model: Model, *args: Any, **kwargs: Any) -> Any:
            return recorder.record_fit(originals["fit"], model, args, kwargs)

        def evaluate(model: Model, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
            if model is recorder.model:
                recorder.evaluation = ("evaluate", x, y)
            return originals["evaluate"](model, x, y, *args, **kwargs)

        def predict(model: Model, x: Any, *args: Any, **kwargs: Any) -> Any:
            if model is recorder.model and (
                recorder.evaluation is None or recorder.evaluation[0] == "predict"
            ):
                recorder.evaluation = ("predict", x, None)
            return originals["predict"](model, x, *args, **kwargs)

        Model.fit, Model.evaluate, Model.predict = fit, evaluate, predict
        try:
            yield self
        finally:
            for name, method in originals.items():
                setattr(Model, name, method)

    def record_fit(self, fit: Any, model: Model, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Run the program's fit; for the recorded model, note everything a replay needs."""
        if self.model is not None and model is not self.model:
            self.other_models.add(model.name)
            return fit(model, *args, **kwargs)
        arguments = bind_fit_arguments(args, kwargs)
        if self.epochs is not None:
            arguments["epochs"] = arguments.get("initial_epoch", 0) + self.epochs
        first = self.model is None
        self.model = model
        record = self.start_record(model, arguments, first)
        callbacks = list(arguments.pop("callbacks", None) or []) + [LearningRateLog(record)]
        with PeakMemory() as memory:
            history = fit(model, callbacks=callbacks, **arguments)
        record.memory = memory.growth
        record.history = {key: list(values) for key, values in history.history.items()}
        record.epoch_seconds = list(history.epoch_seconds)
        return history

    def start_record(self, model: Model, arguments: dict[str, Any], first: bool) -> FitCall:
        model.require_compiled("fit")
        if first:  # the model as it starts: weights, optimizer, loss, metrics
            from .keras_format import save_keras

            save_keras(model, self.out_dir / "initial.keras")
        x, y = model.standardize(arguments.get("x"), arguments.get("y"), "fit")
        validation = arguments.get("validation_data")
        record = FitCall(
            x=x,
            y=y,
            batch_size=arguments.get("batch_size") or 32,
            epochs=arguments.get("epochs", 1),
            shuffle=arguments.get("shuffle", True),
            validation_split=arguments.get("validation_split", 0.0),
            validation_data=model.standardize(*validation[:2], "fit")
            if validation is not None
            else None,
            shuffle_rng=copy.deepcopy(model.shuffle_rng),
        )
        self.fits.append(record)
        return record


FIT_PARAMETERS = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
)


def bind_fit_arguments(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """fit's arguments by name, as Keras's signature orders them."""
    arguments = dict(zip(FIT_PARAMETERS, args))
    arguments.update(kwargs)
    return arguments


# ------------------------------------------------------------------------- replay
def replay_on_keras(recorder: Recorder, progress: Any = None) -> tuple[Any, list[dict[str, Any]]]:
    """Real Keras 3 loads initial.keras and trains on the recorded batches; returns
    (the Keras model, one {"history", "epoch_seconds", "memory"} per fit)."""
    from .reference.keras import import_keras, quiet_keras

    keras = import_keras()
    with quiet_keras():
        keras_model = keras.models.load_model(recorder.out_dir / "initial.keras")
    results = []
    for record in recorder.fits:
        with PeakMemory() as memory:
            history, seconds = replay_fit(keras_model, record, progress)
        results.append({"history": history, "epoch_seconds": seconds, "memory": memory.growth})
    return keras_model, results


def replay_fit(
    keras_model: Any, record: FitCall, progress: Any
) -> tuple[dict[str, list[float]], list[float]]:
    """The epochs the engine ran, each on the engine's permutation, at the engine's learning
    rate."""
    from .reference.keras import quiet_keras

    x, y, validation = record.x, record.y, record.validation_data
    if validation is None and record.validation_split:
        x, y, validation = split_validation(x, y, record.validation_split)
    rng = copy.deepcopy(record.shuffle_rng)
    history: dict[str, list[float]] = {}
    seconds = []
    for epoch, rate in enumerate(record.learning_rates):
        keras_model.optimizer.learning_rate = rate
        order = rng.permutation(len(y)) if record.shuffle else np.arange(len(y))
        start = time.perf_counter()
        with quiet_keras():
            logs = keras_model.fit(
                take(x, order),
                y[order],
                batch_size=record.batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            ).history
        seconds.append(time.perf_counter() - start)
        logs = {key: float(values[-1]) for key, values in logs.items()}
        if validation is not None:
            with quiet_keras():
                val = keras_model.evaluate(
                    *validation, batch_size=record.batch_size, verbose=0, return_dict=True
                )
            logs.update({f"val_{key}": float(value) for key, value in val.items()})
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if progress is not None:
            progress(epoch, len(record.learning_rates), logs)
    return history, seconds


@dataclasses.dataclass
class Replay:
    """What a reference engine did with the recorded program: its fits, its outputs, its files."""

    key: str  # "keras" or "torch"
    name: str  # how the report names it
    fits: list[dict[str, Any]]
    predict: Any  # x -> the model's raw outputs
    save: Any  # folder -> None
    parity: list[dict[str, Any]]


def replay_keras(recorder: Recorder, progress: Any) -> Replay:
    from .reference.keras import quiet_keras

    keras_model, fits = replay_on_keras(recorder, progress)

    def predict(x: Any) -> np.ndarray:
        with quiet_keras():
            return np.asarray(keras_model.predict(x, batch_size=256, verbose=0))

    def save(folder: Path) -> None:
        with quiet_keras():
            keras_model.save(folder / "keras.keras")

    return Replay(
        "keras", "Keras 3 (torch backend)", fits, predict, save, parity_at_start(recorder)
    )


def replay_torch(recorder: Recorder, progress: Any) -> Replay:
    """The PyTorch twin (reference.torch.TorchTrainer) from initial.keras's weights and settings,
    epoch by epoch on the recorded batches at the recorded learning rates (Sequential models)."""
    from .compare import blas_threads
    from .engine.sequential import Sequential
    from .keras_format import load_keras
    from .reference.torch import TorchTrainer

    initial = load_keras(recorder.out_dir / "initial.keras")
    if not isinstance(initial, Sequential):
        raise CnnlabError(
            "--reference torch replays Sequential models; this program builds a functional model: "
            "leave out --reference (Keras 3 replays any model)"
        )
    trainer = TorchTrainer(
        initial.get_config(),
        initial.optimizer.get_config(),
        initial.loss.get_config(),
        seed=0,
        threads=blas_threads(),
    )
    trainer.set_weights_from(initial)
    fits = []
    for record in recorder.fits:
        with PeakMemory() as memory:
            history, seconds = replay_torch_fit(trainer, record, progress)
        fits.append({"history": history, "epoch_seconds": seconds, "memory": memory.growth})
    return Replay(
        "torch",
        "PyTorch",
        fits,
        lambda x: trainer.predict(x, batch_size=256),
        lambda folder: trainer.to_engine().save(folder / "torch.cnnlab"),
        torch_parity(recorder, initial),
    )


def replay_torch_fit(
    trainer: Any, record: FitCall, progress: Any
) -> tuple[dict[str, list[float]], list[float]]:
    rng = copy.deepcopy(record.shuffle_rng)
    history: dict[str, list[float]] = {}
    seconds = []
    for epoch, rate in enumerate(record.learning_rates):
        for group in trainer.optimizer.param_groups:
            group["lr"] = rate
        logs = trainer.fit(
            record.x,
            record.y,
            batch_size=record.batch_size,
            epochs=1,
            shuffle=record.shuffle,
            validation_split=record.validation_split,
            validation_data=record.validation_data,
            shuffle_rng=rng,
        )
        logs = {key: values[-1] for key, values in logs.items()}
        seconds.append(trainer.epoch_seconds[-1])  # that fit's one epoch, training only
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if progress is not None:
            progress(epoch, len(record.learning_rates), logs)
    return history, seconds


def torch_parity(recorder: Recorder, initial: Model) -> list[dict[str, Any]]:
    """reference.torch.parity_report on the first batch, turned into one row per layer."""
    from .reference.torch import parity_report

    x, y = first_batch(recorder.fits[0])
    rows = parity_report(initial, x, y, steps=0, batch_size=len(y))
    table: dict[str, dict[str, Any]] = {
        "loss": {"layer": "loss", "class": "", "grad_max_rel": None}
    }
    for layer in initial.layers:
        table[layer.name] = {
            "layer": layer.name,
            "class": type(layer).__name__,
            "grad_max_rel": None,
        }
    for row in rows:
        entry = table["loss"] if row["quantity"] == "loss" else table.get(row["layer"])
        if row["quantity"] in ("forward", "loss"):
            entry.update(output_max_abs=row["max_abs"], output_max_rel=row["max_rel"])
        elif row["quantity"] == "gradient":
            entry["grad_max_rel"] = max(entry["grad_max_rel"] or 0.0, row["max_rel"])
    return list(table.values())


# ------------------------------------------------------------------------- parity
def parity_at_start(recorder: Recorder) -> list[dict[str, Any]]:
    """Each layer's output and its weights' gradients on the first batch of the first fit, at
    the initial weights, dropout off (inference mode), engine against Keras 3."""
    from .keras_format import load_keras
    from .reference.keras import import_keras

    engine = load_keras(
        recorder.out_dir / "initial.keras", compile=False
    )  # the engine model as it started
    engine.compile(optimizer="sgd", loss=recorder.model.loss)
    x, y = first_batch(recorder.fits[0])
    trace: list[tuple[str, np.ndarray]] = []
    y_pred = engine.forward(x, training=False, trace=trace)
    engine_outputs = {name: out.copy() for name, out in trace}
    engine_loss = engine.loss(y, y_pred)
    engine.backward_from_loss(y, y_pred)
    keras_outputs, keras_loss, keras_grads = keras_parity_pass(
        import_keras(), recorder.out_dir / "initial.keras", x, y, list(engine_outputs)
    )
    rows = [
        {
            "layer": "loss",
            "class": "",
            "output_max_abs": abs(engine_loss - keras_loss),
            "output_max_rel": abs(engine_loss - keras_loss) / max(abs(keras_loss), 1e-12),
            "grad_max_rel": None,
        }
    ]
    for layer in engine.layers:
        if layer.name not in engine_outputs:
            continue
        ours, theirs = engine_outputs[layer.name], keras_outputs[layer.name]
        grads = [
            relative_difference(layer_grad, keras_grads[f"{layer.name}/{key}"])
            for key, layer_grad in layer_gradients(layer).items()
            if f"{layer.name}/{key}" in keras_grads
        ]
        rows.append(
            {
                "layer": layer.name,
                "class": type(layer).__name__,
                "output_max_abs": float(np.abs(ours - theirs).max()) if ours.size else 0.0,
                "output_max_rel": relative_difference(ours, theirs),
                "grad_max_rel": max(grads) if grads else None,
            }
        )
    return rows


def first_batch(record: FitCall) -> tuple[Any, np.ndarray]:
    """The first batch the engine trained on: the first `batch_size` samples of epoch 1's order."""
    rng = copy.deepcopy(record.shuffle_rng)
    x, y = record.x, record.y
    if record.validation_data is None and record.validation_split:
        x, y, _ = split_validation(x, y, record.validation_split)
    order = (
        rng.permutation(len(y))[: record.batch_size]
        if record.shuffle
        else np.arange(min(len(y), record.batch_size))
    )
    return take(x, order), y[order]


def layer_gradients(layer: Any) -> dict[str, np.ndarray]:
    """A layer's weight gradients keyed like Keras's variable paths below the layer
    (nested: "inner/kernel")."""
    if isinstance(layer, Model):
        return {key: value for key, value in layer.grads.items()}
    return dict(layer.grads)


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max(max |theirs|, 1e-6): one number per array, scale-free."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise CnnlabError(f"parity: shapes differ, {ours.shape} against Keras's {theirs.shape}")
    return (
        float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-6)) if ours.size else 0.0
    )


def keras_parity_pass(
    keras: Any, path: Path, x: Any, y: np.ndarray, names: Sequence[str]
) -> tuple[dict[str, np.ndarray], float, dict[str, np.ndarray]]:
    """Keras 3 on torch: every named layer's output, the loss and every weight's gradient, in
    inference mode, with torch's autograd."""
    import torch

    from .reference.keras import quiet_keras

    with quiet_keras():
        model = keras.models.load_model(path)
        probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
        inputs = [torch.tensor(part) for part in x] if isinstance(x, list) else torch.tensor(x)
        outputs = probe(inputs, training=False)
        loss = model.loss(torch.tensor(y), outputs[-1])
    variables = [
        (f"{layer.name}/{variable_key(layer, v)}", v)
        for layer in model.layers
        for v in layer.trainable_weights
    ]
    grads = torch.autograd.grad(loss, [v.value for _, v in variables], allow_unused=True)
    gradients = {key: g.detach().numpy() for (key, _), g in zip(variables, grads) if g is not None}
    return (
        {name: out.detach().numpy() for name, out in zip(names, outputs)},
        float(loss.detach()),
        gradients,
    )


def variable_key(layer: Any, variable: Any) -> str:
    """A Keras variable's name below its layer: "kernel", or "conv2d/kernel" inside a nested
    model."""
    path = variable.path
    prefix = f"{layer.name}/"
    return path[len(prefix) :] if path.startswith(prefix) else variable.name


# ----------------------------------------------------------------------- evaluation
def evaluation_data(recorder: Recorder) -> tuple[str, Any, np.ndarray]:
    """The program's own evaluation data: its last evaluate, else its validation data."""
    model = recorder.model
    if recorder.evaluation is not None and recorder.evaluation[0] == "evaluate":
        _, x, y = recorder.evaluation
        x, y = model.standardize(x, y, "evaluate")
        return "the data of the program's evaluate()", x, y
    record = recorder.fits[-1]
    if record.validation_data is not None:
        return "the program's validation data", *record.validation_data
    if record.validation_split:
        _, _, (x, y) = split_validation(record.x, record.y, record.validation_split)
        return "the program's validation split", x, y
    return (
        "the program's training data (it evaluates nothing and has no validation data)",
        record.x,
        record.y,
    )


def class_labels(y: np.ndarray, outputs: int) -> np.ndarray:
    """Integer labels from one-hot, sparse or (N, 1) targets."""
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] == outputs and outputs > 1:
        return y.argmax(axis=-1).reshape(-1)
    if outputs == 1:
        return (y.reshape(-1) > 0.5).astype(np.int64)
    return y.reshape(-1).astype(np.int64)


def probabilities(model: Model, y_out: np.ndarray) -> np.ndarray:
    """Class probabilities from the model's outputs (softmax or sigmoid of logits when the loss
    takes logits)."""
    if not getattr(model.loss, "from_logits", False):
        return y_out
    if y_out.shape[-1] == 1:
        return 1 / (1 + np.exp(-y_out))
    shifted = np.exp(y_out - y_out.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def is_classifier(model: Model) -> bool:
    name = getattr(model.loss, "name", "")
    return "crossentropy" in name and len(model.output_shape) == 1


def engine_figures(
    model: Model, y_prob: np.ndarray, labels: np.ndarray, fits: list[dict[str, Any]], dataset: str
) -> dict[str, Any]:
    """metrics.json-style figures of one engine on the evaluation data."""
    from .metrics import classification_metrics

    outputs = y_prob.shape[-1] if y_prob.ndim > 1 else 1
    scores = classification_metrics(labels, y_prob, [str(k) for k in range(max(outputs, 2))])
    seconds = [s for fit in fits for s in fit["epoch_seconds"]]
    return {
        "test_accuracy": scores["accuracy"],
        **scores,
        "params": model.count_params() if hasattr(model, "count_params") else None,
        "epoch_seconds": seconds,
        "seconds_per_epoch": float(np.median(seconds)) if seconds else math.nan,
        "memory_growth_mb": max(fit["memory"] for fit in fits) / 2**20,
        "dataset": dataset,
    }


# ---------------------------------------------------------------------- the command
def compare_program(
    program: str | Path,
    args: Sequence[str],
    out_dir: Path,
    epochs: int | None = None,
    progress: Any = None,
    reference: str = "keras",
) -> dict[str, Any]:
    """Run, record, replay on the reference (Keras 3, or the PyTorch twin for Sequential models),
    compare; writes the comparison directory, returns comparison.json."""
    from .keras_run import run_program

    out_dir = runs.prepare_run_dir(out_dir)
    recorder = Recorder(out_dir, epochs)
    with recorder.watching():
        code = run_program(program, args, engine="numpy")
    if code != 0:
        raise CnnlabError(
            f"{program} exited with code {code} on the NumPy engine; fix that first (cnnlab run "
            f"{program})"
        )
    if recorder.model is None:
        raise CnnlabError(
            f"{program} trained no model (it never called model.fit), so there is nothing to "
            "compare; "
            "a program with its own training loop cannot be replayed"
        )
    replay = (replay_keras if reference == "keras" else replay_torch)(recorder, progress)
    summary = summarize(recorder, replay, Path(program).name)
    recorder.model.save(out_dir / "numpy.cnnlab")
    replay.save(out_dir)
    runs.write_json(out_dir / "comparison.json", summary)
    write_program_figures(out_dir, summary)
    render_program_report(out_dir)
    return summary


def summarize(recorder: Recorder, replay: Replay, program: str) -> dict[str, Any]:
    """comparison.json: both engines' metrics on the program's evaluation data, agreement, curves,
    per-layer parity at the start, notes."""
    from .metrics import agreement

    model = recorder.model
    source, x, y = evaluation_data(recorder)
    outputs = {"numpy": model.predict(x, batch_size=256, verbose=0), replay.key: replay.predict(x)}
    probs = {engine: probabilities(model, out) for engine, out in outputs.items()}
    fits = {
        "numpy": [{"epoch_seconds": f.epoch_seconds, "memory": f.memory} for f in recorder.fits],
        replay.key: replay.fits,
    }
    summary = {
        "kind": "program-comparison",
        "program": program,
        "reference": replay.key,
        "reference_name": replay.name,
        "dataset": source,
        "note": PROGRAM_NOTE,
        "notes": replay_notes(recorder),
        "histories": {
            "numpy": merged_history([f.history for f in recorder.fits]),
            replay.key: merged_history([f["history"] for f in replay.fits]),
        },
        "agreement": agreement(probs["numpy"], probs[replay.key]),
        "evaluation_images": int(len(y)),
        "parity": replay.parity,
    }
    if is_classifier(model):
        labels = class_labels(y, probs["numpy"].shape[-1])
        summary["engines"] = {
            engine: engine_figures(model, probs[engine], labels, fits[engine], source)
            for engine in probs
        }
        for engine, out in outputs.items():
            summary["engines"][engine]["test_loss"] = float(
                model.loss(y, np.asarray(out, np.float32))
            )
        summary["class_names"] = [row["class"] for row in summary["engines"]["numpy"]["per_class"]]
        summary["y_true"] = labels.tolist()
        summary["y_prob"] = {engine: prob.tolist() for engine, prob in probs.items()}
    return summary


def merged_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """The epochs of several fit calls, one after another."""
    merged: dict[str, list[float]] = {}
    for history in histories:
        for key, values in history.items():
            merged.setdefault(key, []).extend(values)
    return merged


def replay_notes(recorder: Recorder) -> list[str]:
    """One line for each thing the replay could not reproduce."""
    notes = []
    if any(f.stopped_inside_epoch for f in recorder.fits):
        notes.append("A callback stopped training inside an epoch; Keras trained that whole epoch.")
    if recorder.other_models:
        notes.append(
            f"The program trained other models too ({', '.join(sorted(recorder.other_models))}); "
            "only the first one it trained is compared."
        )
    if recorder.epochs is not None:
        notes.append(
            f"Each fit ran for {recorder.epochs} epoch(s) (--epochs), not the program's own number."
        )
    return notes


# -------------------------------------------------------------------- figures, report
def write_program_figures(out_dir: Path, summary: dict[str, Any]) -> None:
    """Confusion matrices and ROC curves of both engines (classifiers), and both runs' curves."""
    from . import plots

    figures = out_dir / "figures"
    if "engines" in summary:
        cms = {
            engine: np.array(figures_["confusion_matrix"])
            for engine, figures_ in summary["engines"].items()
        }
        plots.plot_confusion_matrices(
            cms, summary["class_names"], figures / "confusion_matrices.png"
        )
        y_true = np.array(summary["y_true"])
        plots.plot_roc_compare(
            {engine: (y_true, np.array(prob)) for engine, prob in summary["y_prob"].items()},
            figures / "roc_compare.png",
        )
    if any(summary["histories"].values()):
        plots.plot_history_compare(summary["histories"], figures / "history_compare.png")


def parity_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per layer; differences in scientific notation (they are near 1e-7)."""

    def sci(value: float | None) -> str:
        return "-" if value is None else f"{value:.2e}"

    return [
        [
            row["layer"],
            row["class"] or "-",
            sci(row["output_max_abs"]),
            sci(row["output_max_rel"]),
            sci(row["grad_max_rel"]),
        ]
        for row in summary.get("parity", [])
    ]


def program_sections(summary: dict[str, Any]) -> list[Any]:
    """The sections only a program comparison has: what ran, what was identical, per-layer
    parity."""
    import html

    from .report import Section, html_table

    notes = "".join(f"<li>{html.escape(note)}</li>" for note in summary.get("notes", []))
    about = (
        f"<p>The program <code>{html.escape(summary['program'])}</code> ran unmodified on "
        "cnnlab's NumPy engine "
        f"and was replayed on {html.escape(summary['reference_name'])}. Evaluated on "
        f"{html.escape(summary['dataset'])}"
        f" ({summary['evaluation_images']:,} samples).</p><p>{html.escape(summary['note'])}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
    )
    parity = html_table(
        parity_rows(summary),
        [
            "layer",
            "class",
            "output max abs diff",
            "output max rel diff",
            "weight gradient max rel diff",
        ],
    )
    return [
        Section("The program", [about]),
        Section(
            "Parity at the initial weights (first batch, dropout off)",
            [
                f"<p>Each layer's output and the gradients of its weights, NumPy engine against "
                f"{html.escape(summary['reference_name'])}, before any training step. float32 in "
                "both: differences "
                "near 1e-6 relative are rounding.</p>",
                parity,
            ],
        ),
    ]


def render_program_report(out_dir: Path) -> Path:
    """report.html of a program comparison, from its files alone (``cnnlab report DIR``)."""
    from .compare import agreement_section, figures_section, metric_rows, per_class_section
    from .report import Section, build_report, html_table

    summary = runs.read_json(out_dir, "comparison.json")
    name = summary["reference_name"]
    sections = program_sections(summary)
    if "engines" in summary:
        table = html_table(metric_rows(summary), ["metric", "NumPy engine", name])
        sections += [Section("Side by side", [table]), per_class_section(summary)]
    sections += [agreement_section(summary, "evaluation samples"), figures_section(out_dir)]
    title = f"{summary['program']}: NumPy engine vs {name}"
    return build_report(title, sections, out_dir / "report.html")
