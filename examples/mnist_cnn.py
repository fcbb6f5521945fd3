"""The classic Keras MNIST convnet (seed 003), ported to cnnlab by changing only the imports.

Conv32-Pool-Conv64-Pool-Flatten-Dropout(0.5)-Dense10 (34,826 parameters), Adam, batch 128,
15 epochs, validation split 0.1: about 99% test accuracy, as with Keras.

    python examples/mnist_cnn.py                              # the seed program, all data
    python examples/mnist_cnn.py --epochs 1 --train-size 1000 --test-size 1000  # a quick look

MNIST is read from $CNNLAB_DATA_DIR/mnist (downloaded there when absent).
"""

import argparse

import numpy as np

from cnnlab import Input, Sequential, layers  # was: from keras import Input, Sequential, layers
from cnnlab.datasets import mnist  # was: from keras.datasets import mnist
from cnnlab.utils import to_categorical  # was: from keras.utils import to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "--epochs", type=int, default=15, help="passes over the training data (default 15)"
)
parser.add_argument(
    "--train-size",
    type=int,
    default=None,
    help="use only the first N training images (default: all 60,000)",
)
parser.add_argument(
    "--test-size",
    type=int,
    default=None,
    help="use only the first N test images (default: all 10,000)",
)
args = parser.parse_args()

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]

# Scale images to the [0, 1] range and give them a channel axis: (N, 28, 28, 1)
x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")

# Convert class vectors to one-hot class matrices
y_train = to_categorical(y_train, num_classes)
y_test = to_categorical(y_test, num_classes)

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

batch_size = 128
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=batch_size, epochs=args.epochs, validation_split=0.1)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
