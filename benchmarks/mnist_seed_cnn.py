"""The seed MNIST program of design.md, run on cnnlab's NumPy engine, with its figures saved.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/mnist_seed_cnn.py [--epochs 15]

Prints Keras-style progress and the test accuracy, and writes
benchmarks/results/mnist_seed_cnn.json (accuracy, loss, seconds per epoch, history).
The program body below is the Keras one with only the imports changed.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab import Input, Sequential, layers
from cnnlab.datasets import mnist
from cnnlab.utils import set_random_seed, to_categorical

if TYPE_CHECKING:
    from cnnlab.keras.callbacks import History


def main() -> None:
    args = parse_args()
    set_random_seed(args.seed)
    score, history, total = seed_program(args.epochs)
    result = {
        "test_loss": score[0],
        "test_accuracy": score[1],
        "epochs": args.epochs,
        "seed": args.seed,
        "epoch_seconds": history.epoch_seconds,
        "median_epoch_seconds": float(np.median(history.epoch_seconds)),
        "fit_seconds_total": total,
        "history": history.history,
        "machine": platform.processor() or platform.machine(),
        "command": "CNNLAB_DATA_DIR=../shared/data python benchmarks/mnist_seed_cnn.py "
        f"--epochs {args.epochs}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"median seconds per epoch: {result['median_epoch_seconds']:.1f}; saved {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "mnist_seed_cnn.json")
    )
    return parser.parse_args()


def seed_program(epochs: int) -> tuple[list[float], History, float]:
    """The seed program (Keras 3 MNIST convnet), imports changed to cnnlab: its test score
    [loss, accuracy], its history and the seconds fit took."""
    num_classes, input_shape = 10, (28, 28, 1)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train, y_test = to_categorical(y_train, num_classes), to_categorical(y_test, num_classes)
    model = Sequential(
        [
            Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.summary()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1)
    total = time.perf_counter() - start
    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    return score, history, total


if __name__ == "__main__":
    main()
