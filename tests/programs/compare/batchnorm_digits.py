"""BatchNormalization between a convolution and its activation, and before the classifier."""

import keras
from keras import layers
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)  # the same start on every run

digits = load_digits()
x = (digits.images / 16.0).astype("float32")[..., None]
x_train, y_train, x_test, y_test = x[:1400], digits.target[:1400], x[1400:], digits.target[1400:]

model = keras.Sequential(
    [
        keras.Input(shape=(8, 8, 1)),
        layers.Conv2D(16, 3, use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.GlobalAveragePooling2D(),
        layers.BatchNormalization(),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=12, batch_size=32, verbose=0)
print(f"TEST_ACCURACY {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
