"""The seed study's "my handwritten model vs the framework's", in the Python API.

The same CNN is trained twice from the same initial weights on the same batches: once in
cnnlab's NumPy engine, once in PyTorch (cnnlab.reference.torch). Their test accuracy,
macro precision and recall, and how often they predict the same class are printed.

    python examples/compare_engines.py --epochs 3 --train-size 10000
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
from sklearn.metrics import accuracy_score, precision_score, recall_score

from cnnlab import Input, Sequential, layers
from cnnlab.datasets import mnist
from cnnlab.reference.torch import TorchTrainer
from cnnlab.utils import to_categorical


def main() -> None:
    args = parse_args()
    x_train, y_onehot, x_test, y_test = load_mnist(args.train_size, args.test_size)
    model = seed_cnn()

    # the PyTorch twin: same architecture, same initial weights, same batch order
    twin = TorchTrainer(
        model.get_config(), model.optimizer.get_config(), model.loss.get_config(), seed=0
    )
    twin.set_weights_from(model)
    same_batches = copy.deepcopy(model.shuffle_rng)

    model.fit(x_train, y_onehot, batch_size=128, epochs=args.epochs, validation_split=0.1)
    twin.fit(
        x_train,
        y_onehot,
        batch_size=128,
        epochs=args.epochs,
        validation_split=0.1,
        shuffle_rng=same_batches,
    )

    predictions = {
        "numpy engine": model.predict(x_test).argmax(1),
        "pytorch": twin.predict(x_test).argmax(1),
    }
    print_scores(predictions, y_test)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    return parser.parse_args()


def load_mnist(
    train_size: int, test_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first train_size training images (N, 28, 28, 1) in [0, 1] with one-hot labels
    (N, 10), and the first test_size test images with their class numbers."""
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = np.expand_dims(x_train[:train_size].astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test[:test_size].astype("float32") / 255, -1)
    y_onehot = to_categorical(y_train[:train_size], 10)
    return x_train, y_onehot, x_test, y_test[:test_size]


def seed_cnn() -> Sequential:
    """The seed MNIST CNN, seeded and compiled as the seed program compiles it."""
    model = Sequential(
        [
            Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def print_scores(predictions: dict[str, np.ndarray], y_test: np.ndarray) -> None:
    """Each engine's test accuracy, macro precision and recall, and how often they agree."""
    for name, predicted in predictions.items():
        print(
            f"{name:>12}: accuracy {accuracy_score(y_test, predicted):.4f}  "
            f"precision {precision_score(y_test, predicted, average='macro'):.4f}  "
            f"recall {recall_score(y_test, predicted, average='macro'):.4f}"
        )
    same = np.mean(predictions["numpy engine"] == predictions["pytorch"])
    print(f"the two engines predict the same class for {same:.2%} of the test images")


if __name__ == "__main__":
    main()
