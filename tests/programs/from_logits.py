"""A model that outputs logits, trained with SparseCategoricalCrossentropy(from_logits=True)."""

import keras
import numpy as np

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = x_train[:2000, ..., None] / 255.0, y_train[:2000]
x_test, y_test = x_test[:1000, ..., None] / 255.0, y_test[:1000]

model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(0.003),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
logits = model.predict(x_test, verbose=0)
print("logits, not probabilities:", bool(np.any(logits < 0)))
print(f"TEST_ACCURACY {np.mean(np.argmax(logits, axis=1) == y_test):.4f}")
