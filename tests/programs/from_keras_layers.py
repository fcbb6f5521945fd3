"""`from keras.layers import ...`, `from keras.models import Sequential`, a model built with
.add."""

from keras.datasets import mnist
from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.utils import to_categorical

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = x_train[:2000].reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test[:1000].reshape(-1, 28, 28, 1).astype("float32") / 255
y_train, y_test = to_categorical(y_train[:2000]), to_categorical(y_test[:1000])

model = Sequential()
model.add(Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)))
model.add(MaxPooling2D((2, 2)))
model.add(Flatten())
model.add(Dense(32, activation="relu"))
model.add(Dense(10, activation="softmax"))
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"TEST_ACCURACY {accuracy:.4f}")
