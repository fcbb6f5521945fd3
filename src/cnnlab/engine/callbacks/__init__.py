"""Callbacks: hooks into ``fit``, ``evaluate`` and ``predict`` (keras.callbacks), and Keras's
progress bar.

The hooks, their arguments and their order are Keras 3's. ``fit`` drives a ``CallbackList`` so:

    hooks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                         verbose=verbose, epochs=epochs, steps=steps)
    hooks.on_train_begin()
    for epoch in ...:
        hooks.on_epoch_begin(epoch)
        for step in ...:
            hooks.on_train_batch_begin(step); ...; hooks.on_train_batch_end(step, logs)
            if model.stop_training: break
        hooks.on_test_begin(); (on_test_batch_begin / on_test_batch_end per batch);
        hooks.on_test_end(val_logs)
        hooks.on_epoch_end(epoch, logs)          # logs hold the val_ entries too
        if model.stop_training: break
    hooks.on_train_end(logs)                     # the last epoch's logs
    return hooks.history

The engine prints plain text only (it imports NumPy and the standard library); the command
line passes its own richer progress callback and ``verbose=0``.

One module per idea: ``base`` (Callback, the hooks, the logs as callbacks see them),
``callback_list`` (CallbackList), ``history``, ``progbar`` (Keras's progress bar and
ProgbarLogger), ``monitor`` (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint), ``control``
(LearningRateScheduler, TerminateOnNaN), ``files`` (CSVLogger, BackupAndRestore) and
``unsupported``. Every public name is importable from ``cnnlab.engine.callbacks``; the Callback
classes found here are ``cnnlab.keras.callbacks``.
"""

from .base import (
    HOOKS as HOOKS,
)
from .base import (
    Callback as Callback,
)
from .base import (
    LambdaCallback as LambdaCallback,
)
from .base import (
    flatten as flatten,
)
from .base import (
    print_msg as print_msg,
)
from .base import (
    python_value as python_value,
)
from .base import (
    pythonify_logs as pythonify_logs,
)
from .callback_list import (
    CallbackList as CallbackList,
)
from .control import (
    LearningRateScheduler as LearningRateScheduler,
)
from .control import (
    TerminateOnNaN as TerminateOnNaN,
)
from .files import (
    BackupAndRestore as BackupAndRestore,
)
from .files import (
    CSVLogger as CSVLogger,
)
from .files import (
    csv_value as csv_value,
)
from .files import (
    refuse_csv_link as refuse_csv_link,
)
from .history import (
    History as History,
)
from .monitor import (
    METRICS_DOWN as METRICS_DOWN,
)
from .monitor import (
    METRICS_UP as METRICS_UP,
)
from .monitor import (
    EarlyStopping as EarlyStopping,
)
from .monitor import (
    ModelCheckpoint as ModelCheckpoint,
)
from .monitor import (
    MonitorCallback as MonitorCallback,
)
from .monitor import (
    ReduceLROnPlateau as ReduceLROnPlateau,
)
from .monitor import (
    metric_direction as metric_direction,
)
from .progbar import (
    ANSI_CODE as ANSI_CODE,
)
from .progbar import (
    Progbar as Progbar,
)
from .progbar import (
    ProgbarLogger as ProgbarLogger,
)
from .progbar import (
    format_eta as format_eta,
)
from .progbar import (
    format_logs as format_logs,
)
from .progbar import (
    format_metric as format_metric,
)
from .progbar import (
    format_time_per_unit as format_time_per_unit,
)
from .unsupported import (
    SUPPORTED as SUPPORTED,
)
from .unsupported import (
    OrbaxCheckpoint as OrbaxCheckpoint,
)
from .unsupported import (
    RemoteMonitor as RemoteMonitor,
)
from .unsupported import (
    SwapEMAWeights as SwapEMAWeights,
)
from .unsupported import (
    TensorBoard as TensorBoard,
)
from .unsupported import (
    UnsupportedCallback as UnsupportedCallback,
)
