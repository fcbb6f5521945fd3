"""Keras 2 style: np_utils, keras.layers.core / .convolutional, Adam(lr=...), input_dim
(runs on cnnlab, not on Keras 3, which refuses `lr`)."""

from keras.datasets import mnist
from keras.layers.convolutional import Conv2D, MaxPooling2D
from keras.layers.core import Dense, Dropout, Flatten
from keras.models import Sequential
from keras.optimizers import Adam
from keras.utils import np_utils

(X_train, y_train), (X_test, y_test) = mnist.load_data()
X_train = X_train[:2000].reshape(2000, 28, 28, 1).astype("float32") / 255
X_test = X_test[:1000].reshape(1000, 28, 28, 1).astype("float32") / 255
Y_train = np_utils.to_categorical(y_train[:2000], 10)
Y_test = np_utils.to_categorical(y_test[:1000], 10)

model = Sequential()
model.add(Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.25))
model.add(Flatten())
model.add(Dense(10, activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer=Adam(lr=0.001), metrics=["accuracy"])
model.fit(X_train, Y_train, batch_size=64, epochs=3, verbose=1)
score = model.evaluate(X_test, Y_test, verbose=0)
print(f"TEST_ACCURACY {score[1]:.4f}")
