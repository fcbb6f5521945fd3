"""BatchNormalization between a convolution and its activation."""

import keras
from keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = x_train[:2000, ..., None] / 255.0, y_train[:2000]
x_test, y_test = x_test[:1000, ..., None] / 255.0, y_test[:1000]

model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(8, 3, use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ]
)
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
print(f"TEST_ACCURACY {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
