"""The playground as a standalone Keras program (the page's "Export code"): it runs on Keras 3 or,
with ``from cnnlab import keras``, on cnnlab's engine."""

from __future__ import annotations

from ..engine import optimizers
from .playground_settings import PlaygroundSettings


def export_code(s: PlaygroundSettings, regression: bool, outputs: int, epochs: int) -> str:
    """The playground's settings as a standalone Keras program."""
    hidden = "".join(
        f'    keras.layers.Dense({u}, activation="{s.activation}"),\n' for u in s.units()
    )
    dropout = f"    keras.layers.Dropout({s.dropout}),\n" if s.dropout else ""
    last = (
        "keras.layers.Dense(1)"
        if regression
        else f'keras.layers.Dense({outputs}, activation="softmax")'
    )
    loss = '"mse"' if regression else '"sparse_categorical_crossentropy"'
    metrics = "[]" if regression else '["accuracy"]'
    optimizer = type(optimizers.get(s.optimizer)).__name__
    return f'''"""The cnnlab lab playground as a Keras program: {s.function!r}, seed {s.seed}."""
import keras  # or, on cnnlab's own engine: from cnnlab import keras
import numpy as np

from cnnlab.approx import InputEncoder
from cnnlab.datasets import function2d

function = function2d.get_function({s.function!r})
(x_train, y_train), (x_test, y_test) = function2d.make_dataset(
    function, {s.samples}, noise={s.noise}, test_fraction={s.test_fraction}, seed={s.seed})
encoder = InputEncoder(function.domain)  # the network sees the points scaled to [0, 1] x [0, 1]
x_train, x_test = encoder.encode(x_train), encoder.encode(x_test)

keras.utils.set_random_seed({s.seed})
model = keras.Sequential([
    keras.Input(shape=(2,)),
{hidden}{dropout}    {last},
])
model.compile(optimizer=keras.optimizers.{optimizer}(learning_rate={s.learning_rate}), \
loss={loss}, metrics={metrics})
model.fit(x_train, y_train, batch_size={s.batch_size}, epochs={epochs}, \
validation_data=(x_test, y_test))
print(model.evaluate(x_test, y_test, verbose=0))
'''
