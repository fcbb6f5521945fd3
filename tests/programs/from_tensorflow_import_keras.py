"""`from tensorflow import keras` (TensorFlow's classic tutorials), sparse labels."""

from tensorflow import keras
from tensorflow.keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, x_test = x_train[:2000] / 255.0, x_test[:1000] / 255.0
y_train, y_test = y_train[:2000], y_test[:1000]

model = keras.Sequential(
    [
        layers.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.001),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
history = model.fit(
    x_train, y_train, epochs=3, batch_size=32, validation_data=(x_test, y_test), verbose=0
)
print("epochs run:", len(history.history["loss"]))
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print(f"TEST_ACCURACY {test_acc:.4f}")
