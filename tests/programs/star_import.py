"""`from tensorflow.keras.layers import *` and `from tensorflow.keras.models import Sequential`."""

import numpy as np
from tensorflow.keras.datasets import mnist
from tensorflow.keras.layers import *
from tensorflow.keras.models import Sequential
from tensorflow.keras.utils import to_categorical

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = (x_train[:2000] / 255.0).reshape(-1, 28, 28, 1)
x_test = (x_test[:1000] / 255.0).reshape(-1, 28, 28, 1)
y_train, y_test = to_categorical(y_train[:2000], 10), to_categorical(y_test[:1000], 10)

model = Sequential(
    [
        Conv2D(8, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
        AveragePooling2D(2),
        Conv2D(8, 3, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(10),
        Activation("softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0)
accuracy = np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == np.argmax(y_test, axis=1))
print(f"TEST_ACCURACY {accuracy:.4f}")
