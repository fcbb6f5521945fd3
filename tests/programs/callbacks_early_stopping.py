"""EarlyStopping and ModelCheckpoint; the checkpoint path comes from the command line."""

import os
import sys

import keras
from keras.callbacks import EarlyStopping, ModelCheckpoint

out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = x_train[:2000].reshape(-1, 784) / 255.0, y_train[:2000]
x_test, y_test = x_test[:1000].reshape(-1, 784) / 255.0, y_test[:1000]

model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
checkpoint = os.path.join(out_dir, "best.keras")
callbacks = [
    EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
    ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
]
history = model.fit(
    x_train, y_train, epochs=4, batch_size=32, validation_split=0.2, callbacks=callbacks, verbose=0
)
print("EPOCHS_RUN", len(history.history["loss"]))
print("CHECKPOINT_SAVED", os.path.exists(checkpoint))
best = keras.models.load_model(checkpoint)
print("RELOADED_ACCURACY", f"{best.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
print(f"TEST_ACCURACY {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
