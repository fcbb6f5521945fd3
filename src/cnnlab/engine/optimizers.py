"""Optimizers with Keras 3 defaults and update rules.

``apply(updates)`` takes (key, parameter, gradient) triples, key = "layer_name/param", and
changes each parameter in place. The optimizer's state (moments, velocities) is keyed the
same way, so ``get_state``/``set_state`` can checkpoint and restore it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

Update = tuple[str, np.ndarray, np.ndarray]


class Optimizer:
    """Base class: the step counter and per-parameter slots."""

    name = "optimizer"
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float = 0.001) -> None:
        if not isinstance(learning_rate, (int, float)) or not learning_rate > 0 or not math.isfinite(learning_rate):
            raise ValueError(f"{type(self).__name__}: learning_rate must be a positive number, received {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self.slots: dict[str, dict[str, np.ndarray]] = {}

    def slot(self, key: str, param: np.ndarray) -> dict[str, np.ndarray]:
        """The state of one parameter, created as zeros on first use."""
        if key not in self.slots:
            self.slots[key] = {name: np.zeros_like(param) for name in self.slot_names}
        return self.slots[key]

    def apply(self, updates: Iterable[Update]) -> None:
        self.iterations += 1
        for key, param, grad in updates:
            self.update(param, grad, self.slot(key, param))

    def update(self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def get_state(self) -> dict[str, np.ndarray]:
        """Every slot as "layer/param/slot" -> array, plus the step count."""
        state = {f"{key}/{name}": value for key, slot in self.slots.items() for name, value in slot.items()}
        state["iterations"] = np.array(self.iterations, dtype=np.int64)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.iterations = int(state["iterations"])
        self.slots = {}
        for full_key, value in state.items():
            if full_key != "iterations":
                key, name = full_key.rsplit("/", 1)
                self.slots.setdefault(key, {})[name] = np.array(value)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    """v = momentum * v - lr * g;  p += v  (nesterov: p += momentum * v - lr * g)."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), received {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("velocity",) if momentum > 0 else ()

    def update(self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray]) -> None:
        if self.momentum == 0:
            param -= self.learning_rate * grad
            return
        velocity = slot["velocity"]
        velocity *= self.momentum
        velocity -= self.learning_rate * grad
        if self.nesterov:
            param += self.momentum * velocity - self.learning_rate * grad
        else:
            param += velocity

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)   (Keras's form)."""

    name = "adam"
    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def apply(self, updates: Iterable[Update]) -> None:
        t = self.iterations + 1
        self.step_size = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        super().apply(updates)

    def update(self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray]) -> None:
        m, v = slot["momentum"], slot["velocity"]
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (grad * grad - v)
        param -= self.step_size * m / (np.sqrt(v) + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2;  p -= lr * g / sqrt(v + eps)   (Keras's form)."""

    name = "rmsprop"
    slot_names = ("velocity",)

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray]) -> None:
        v = slot["velocity"]
        v *= self.rho
        v += (1 - self.rho) * grad * grad
        param -= self.learning_rate * grad / np.sqrt(v + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier: str | Optimizer | dict, learning_rate: float | None = None) -> Optimizer:
    """An optimizer by Keras name ("adam", "sgd", "rmsprop"), config dict, or instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        name = str(config.pop("name", "")).lower()
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(sorted(OPTIMIZERS))}")
        return OPTIMIZERS[name](**config)
    if not isinstance(identifier, str) or identifier.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {identifier!r}; choose one of {', '.join(sorted(OPTIMIZERS))}")
    cls = OPTIMIZERS[identifier.lower()]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)
