"""TensorFlow 2 quickstart for beginners (tensorflow.org), on a slice of MNIST: from_logits, a loss
called on arrays, and a Sequential nested in a Sequential with a Softmax layer."""

import numpy as np
import tensorflow as tf

mnist = tf.keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, x_test = x_train[:2000] / 255.0, x_test[:1000] / 255.0
y_train, y_test = y_train[:2000], y_test[:1000]

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Input(shape=(28, 28)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10),
    ]
)
predictions = model(x_train[:1]).numpy()
print(tf.nn.softmax(predictions).numpy())
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
print("initial loss", loss_fn(y_train[:1], predictions).numpy())
model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, verbose=0)
model.evaluate(x_test, y_test, verbose=2)
probability_model = tf.keras.Sequential([model, tf.keras.layers.Softmax()])
probabilities = probability_model(x_test).numpy()
print("rows sum to 1:", bool(np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)))
print(f"TEST_ACCURACY {np.mean(np.argmax(probabilities, axis=1) == y_test):.4f}")
