"""A model that outputs logits, trained with SparseCategoricalCrossentropy(from_logits=True);
it evaluates nothing, so its validation data is what gets compared."""

import tensorflow as tf
from sklearn.datasets import load_digits

tf.random.set_seed(0)  # the same start on every run

digits = load_digits()
x = (digits.images / 16.0).astype("float32").reshape(-1, 64)
x_train, y_train, x_test, y_test = x[:1400], digits.target[:1400], x[1400:], digits.target[1400:]

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Dense(64, activation="relu", input_shape=(64,)),
        tf.keras.layers.Dense(10),
    ]
)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer="sgd", loss=loss_fn, metrics=["accuracy"])
model.fit(x_train, y_train, epochs=15, batch_size=16, validation_data=(x_test, y_test), verbose=0)
print("first logits:", model(x_test[:1]).numpy().round(2))
