"""The functional API with a residual block, sparse labels."""

import keras
from keras import layers
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)  # the same start on every run

digits = load_digits()
x = (digits.images / 16.0).astype("float32")[..., None]
x_train, y_train, x_test, y_test = x[:1400], digits.target[:1400], x[1400:], digits.target[1400:]

inputs = keras.Input(shape=(8, 8, 1))
h = layers.Conv2D(12, 3, padding="same", activation="relu")(inputs)
shortcut = h
h = layers.Conv2D(12, 3, padding="same", activation="relu")(h)
h = layers.Add()([h, shortcut])
h = layers.MaxPooling2D(2)(h)
h = layers.Flatten()(h)
outputs = layers.Dense(10, activation="softmax")(h)
model = keras.Model(inputs, outputs, name="residual_digits")
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.002),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(x_train, y_train, batch_size=32, epochs=10, validation_data=(x_test, y_test), verbose=0)
print(f"TEST_ACCURACY {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
