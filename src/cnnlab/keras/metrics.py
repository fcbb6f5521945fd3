"""keras.metrics: the engine's metrics (``cnnlab.engine.metrics``, where this build has it).

Metrics given to ``compile`` as strings ("accuracy") need nothing from this module.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module, optional_module, public_api


def resolve_metrics() -> dict[str, Any]:
    """Every Metric class and metric function of the engine, and ``get``; none before it has
    them."""
    metrics = optional_module("cnnlab.engine.metrics")
    if metrics is None:
        return {}
    return public_api(metrics, getattr(metrics, "Metric", None))


__getattr__, __dir__ = keras_module(__name__, "keras.metrics", resolve_metrics, "metrics")
