"""comparison.json of a program comparison: both engines' outputs on the program's own evaluation
data, their metrics, agreement, merged training curves, per-layer parity and the notes on what a
replay could not reproduce."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine.model import Model, split_validation
from .record import Recorder
from .replay import Replay

PROGRAM_NOTE = (
    "Identical in both engines: the initial weights (every layer, moving statistics included), "
    "the optimizer, "
    "loss and metrics, the batches and their order in every epoch, and the learning rate of every "
    "epoch. "
    "Not identical: dropout masks and any other random draw during training (each engine draws "
    "its own), "
    "and the order of floating-point sums inside each engine's kernels."
)


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
    """metrics.json-style figures of one engine on the evaluation data (its Evaluation)."""
    from ..evaluation import Evaluation

    outputs = y_prob.shape[-1] if y_prob.ndim > 1 else 1
    names = [str(k) for k in range(max(outputs, 2))]
    seconds = [s for fit in fits for s in fit["epoch_seconds"]]
    return Evaluation.of_classifier(labels, y_prob, names).metrics(
        params=model.count_params() if hasattr(model, "count_params") else None,
        epoch_seconds=seconds,
        seconds_per_epoch=float(np.median(seconds)) if seconds else math.nan,
        memory_growth_mb=max(fit["memory"] for fit in fits) / 2**20,
        dataset=dataset,
    )


def summarize(recorder: Recorder, replay: Replay, program: str) -> dict[str, Any]:
    """comparison.json: both engines' metrics on the program's evaluation data, agreement, curves,
    per-layer parity at the start, notes."""
    from ..metrics import agreement

    model = recorder.model
    source, x, y = evaluation_data(recorder)
    outputs = {"numpy": model.predict(x, batch_size=256, verbose=0), replay.key: replay.predict(x)}
    probs = {engine: probabilities(model, out) for engine, out in outputs.items()}
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
        summary.update(classifier_summary(recorder, replay, source, y, outputs, probs))
    return summary


def classifier_summary(
    recorder: Recorder,
    replay: Replay,
    source: str,
    y: np.ndarray,
    outputs: dict[str, np.ndarray],
    probs: dict[str, np.ndarray],
) -> dict[str, Any]:
    """A classifier's part of comparison.json: each engine's metrics.json-style figures and test
    loss, the class names, the true labels and both engines' probabilities."""
    model = recorder.model
    fits = {
        "numpy": [{"epoch_seconds": f.epoch_seconds, "memory": f.memory} for f in recorder.fits],
        replay.key: replay.fits,
    }
    labels = class_labels(y, probs["numpy"].shape[-1])
    engines = {
        engine: engine_figures(model, probs[engine], labels, fits[engine], source)
        for engine in probs
    }
    for engine, out in outputs.items():
        engines[engine]["test_loss"] = float(model.loss(y, np.asarray(out, np.float32)))
    return {
        "engines": engines,
        "class_names": [row["class"] for row in engines["numpy"]["per_class"]],
        "y_true": labels.tolist(),
        "y_prob": {engine: prob.tolist() for engine, prob in probs.items()},
    }


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
