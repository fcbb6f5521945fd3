"""A custom Callback that stops training from on_batch_end
(Keras 2's name, still called by Keras 3)."""

import keras


class StopAfterBatches(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.seen = 0

    def on_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.batches:
            self.model.stop_training = True


(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = x_train[:2000].reshape(-1, 784) / 255.0, y_train[:2000]
x_test, y_test = x_test[:1000].reshape(-1, 784) / 255.0, y_test[:1000]
model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
stopper = StopAfterBatches(25)
history = model.fit(x_train, y_train, epochs=5, batch_size=20, callbacks=[stopper], verbose=0)
print("BATCHES_SEEN", stopper.seen)
print("EPOCHS_RUN", len(history.history["loss"]))
print(f"TEST_ACCURACY {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
