"""`import tensorflow as tf` and tf.keras.*: model(x).numpy(), tf.nn.softmax, tf.argmax."""

import numpy as np
import tensorflow as tf

print("TensorFlow version:", tf.__version__)
print("GPUs:", tf.config.list_physical_devices("GPU"))
tf.random.set_seed(1)

mnist = tf.keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, x_test = x_train[:2000] / 255.0, x_test[:1000] / 255.0
y_train, y_test = y_train[:2000], y_test[:1000]

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(64, activation=tf.nn.relu),
        tf.keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, verbose=0)

probabilities = model(x_test[:1]).numpy()
print("first probabilities sum to", round(float(np.sum(probabilities)), 4))
scores = tf.nn.softmax([[2.0, 1.0, 0.1]]).numpy()
print("softmax of [2, 1, 0.1]:", [round(float(p), 4) for p in scores[0]])
predicted = tf.argmax(model.predict(x_test, verbose=0), axis=1).numpy()
print(f"TEST_ACCURACY {np.mean(predicted == y_test):.4f}")
