"""Optimizers with Keras 3 defaults and update rules.

``apply(updates)`` takes (key, parameter, gradient) triples, key = "layer_name/param", and
changes each parameter in place. The optimizer's state (moments, velocities) is keyed the
same way, so ``get_state``/``set_state`` can checkpoint and restore it exactly.

One step t (counted from 1), as Keras 3's ``BaseOptimizer.apply`` does it:
1. the rate of this step, lr_t = learning_rate / (1 + decay * (t - 1)) (Keras 2's ``decay``;
   0 unless given);
2. each gradient clipped (``clipnorm``: to that L2 norm; ``clipvalue``: elementwise);
3. decoupled weight decay, p -= p * weight_decay * lr_t (``weight_decay``; AdamW's 0.004);
4. the optimizer's own rule (``update``).

``learning_rate`` is a plain float that callbacks (ReduceLROnPlateau, LearningRateScheduler)
read and assign between batches.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .errors import UnsupportedKerasFeature
from .losses import refuse_unless_default

Update = tuple[str, np.ndarray, np.ndarray]

# Arguments of every keras.optimizers.Optimizer that cnnlab accepts only at their default.
OPTIMIZER_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "global_clipnorm": (None,),
    "use_ema": (False,),
    "ema_momentum": (0.99,),
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
}


CHUNK_BYTES = 64 * 1024  # a rule's temporaries below glibc's 128 KB: reused heap, no fresh pages


def chunks(
    param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """(param, grad, slot) in pieces of at most CHUNK_BYTES of the parameter, as flat views.

    Every rule here is elementwise, so it may run piece by piece; its temporaries (grad - m,
    sqrt(v), ...) are then small, and malloc hands back the same memory every time instead
    of fresh pages from the kernel for each temporary of a large kernel (CIFAR-10's
    1024 x 64 Dense: 67 page faults a step). A parameter or slot that is not contiguous is
    updated whole (a flat view of it would be a copy)."""
    arrays = [param, *slot.values()]
    step = max(1, CHUNK_BYTES // param.itemsize)
    if param.size <= step or not all(a.flags.c_contiguous for a in arrays):
        yield param, grad, slot
        return
    flat_param, flat_grad = param.reshape(-1), grad.reshape(-1)
    flat_slot = {name: value.reshape(-1) for name, value in slot.items()}
    for start in range(0, param.size, step):
        part = slice(start, start + step)
        yield flat_param[part], flat_grad[part], {k: v[part] for k, v in flat_slot.items()}


class Optimizer:
    """Base class: the step counter, per-parameter slots, and what Keras does around every rule."""

    name = "optimizer"
    slot_names: tuple[str, ...] = ()
    slot_initial_value = 0.0

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        learning_rate, self.decay = keras2_arguments(type(self).__name__, learning_rate, kwargs)
        refuse_unless_default(type(self).__name__, kwargs, OPTIMIZER_DEFAULTS)
        self.learning_rate = check_positive(type(self).__name__, "learning_rate", learning_rate)
        self.weight_decay = (
            None
            if weight_decay is None
            else check_positive(type(self).__name__, "weight_decay", weight_decay, zero_ok=True)
        )
        if clipnorm is not None and clipvalue is not None:
            raise ValueError(
                f"{type(self).__name__}: only one of clipnorm and clipvalue can be set, "
                f"received clipnorm={clipnorm}, clipvalue={clipvalue}"
            )
        self.clipnorm = (
            None if clipnorm is None else check_positive(type(self).__name__, "clipnorm", clipnorm)
        )
        self.clipvalue = (
            None
            if clipvalue is None
            else check_positive(type(self).__name__, "clipvalue", clipvalue)
        )
        self.iterations = 0
        self.slots: dict[str, dict[str, np.ndarray]] = {}

    @property
    def lr(self) -> float:
        """Keras 2's name of ``learning_rate`` (read and assigned by Keras 2 callbacks)."""
        return self.learning_rate

    @lr.setter
    def lr(self, value: float) -> None:
        self.learning_rate = check_positive(type(self).__name__, "learning_rate", value)

    def current_learning_rate(self) -> float:
        """The rate of the next step: learning_rate / (1 + decay * iterations) (Keras 2's decay)."""
        return (
            self.learning_rate / (1 + self.decay * self.iterations)
            if self.decay
            else self.learning_rate
        )

    def slot(self, key: str, param: np.ndarray) -> dict[str, np.ndarray]:
        """The state of one parameter, created on first use (zeros; Adagrad: its initial value)."""
        if key not in self.slots:
            self.slots[key] = {
                name: np.full_like(param, self.slot_initial_value) for name in self.slot_names
            }
        return self.slots[key]

    def apply(self, updates: Iterable[Update]) -> None:
        lr = self.current_learning_rate()
        self.begin_step(self.iterations + 1, lr)
        for key, param, grad in updates:
            grad = self.clip(grad)
            for part, part_grad, part_slot in chunks(param, grad, self.slot(key, param)):
                if self.weight_decay:
                    part -= part * self.weight_decay * lr
                self.update(part, part_grad, part_slot, lr)
        self.iterations += 1

    def begin_step(self, t: int, lr: float) -> None:
        """Scalars shared by every parameter in step t (Adam's bias corrections)."""

    def clip(self, grad: np.ndarray) -> np.ndarray:
        """Keras's clipnorm (g * c / max(||g||, c), per weight) or clipvalue (clip(g, -c, c))."""
        if self.clipnorm is not None:
            return grad * self.clipnorm / max(float(np.sqrt((grad * grad).sum())), self.clipnorm)
        if self.clipvalue is not None:
            return np.clip(grad, -self.clipvalue, self.clipvalue)
        return grad

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        raise NotImplementedError

    def get_state(self) -> dict[str, np.ndarray]:
        """Every slot as "layer/param/slot" -> array, plus the step count."""
        state = {
            f"{key}/{name}": value
            for key, slot in self.slots.items()
            for name, value in slot.items()
        }
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
        """Keras's argument names; the optional ones only when set (``decay`` is Keras 2's)."""
        config: dict[str, Any] = {"name": self.name, "learning_rate": self.learning_rate}
        optional = {
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "decay": self.decay or None,
        }
        return {**config, **{key: value for key, value in optional.items() if value is not None}}


def keras2_arguments(
    owner: str, learning_rate: float, kwargs: dict[str, Any]
) -> tuple[float, float]:
    """Keras 2's ``lr=`` and ``decay=`` (taken out of kwargs), each with a DeprecationWarning."""
    if "lr" in kwargs:
        warnings.warn(
            f"{owner}: 'lr' is Keras 2's name; Keras 3 calls it 'learning_rate'",
            DeprecationWarning,
            stacklevel=3,
        )
        learning_rate = kwargs.pop("lr")
    decay = kwargs.pop("decay", None) or 0.0
    if decay:
        warnings.warn(
            f"{owner}: 'decay' is Keras 2's inverse-time decay, lr / (1 + decay * iterations), "
            "which "
            "Keras 3 ignores; Keras 3 spells it "
            "learning_rate=keras.optimizers.schedules.InverseTimeDecay("
            "lr, decay_steps=1, decay_rate=decay)",
            DeprecationWarning,
            stacklevel=3,
        )
    return learning_rate, check_positive(owner, "decay", decay, zero_ok=True)


def check_positive(owner: str, argument: str, value: Any, zero_ok: bool = False) -> float:
    """A finite number > 0 (>= 0 with zero_ok), as a float; ValueError naming the argument
    otherwise."""
    if callable(value) and argument == "learning_rate":
        raise UnsupportedKerasFeature(
            f"{owner}: learning rate schedules are not supported by cnnlab; "
            "give a float and change it with a LearningRateScheduler callback"
        )
    number = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
        value, bool
    )
    if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind = "a non-negative" if zero_ok else "a positive"
        raise ValueError(f"{owner}: {argument} must be {kind} number, received {value!r}")
    return float(value)


class SGD(Optimizer):
    """keras.optimizers.SGD: v = momentum * v - lr * g;  p += v
    (nesterov: p += momentum * v - lr * g)."""

    name = "sgd"

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), received {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("velocity",) if momentum > 0 else ()

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        if self.momentum == 0:
            param -= lr * grad
            return
        velocity = slot["velocity"]
        velocity *= self.momentum
        velocity -= lr * grad
        if self.nesterov:
            param += self.momentum * velocity - lr * grad
        else:
            param += velocity

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """keras.optimizers.Adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)   (Keras's form).
    amsgrad: v_hat = max(v_hat, v) takes v's place in the step."""

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)
        self.slot_names = (
            ("momentum", "velocity", "velocity_hat") if amsgrad else ("momentum", "velocity")
        )

    def begin_step(self, t: int, lr: float) -> None:
        self.step_size = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        m, v = slot["momentum"], slot["velocity"]
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (grad * grad - v)
        if self.amsgrad:
            np.maximum(slot["velocity_hat"], v, out=slot["velocity_hat"])
            v = slot["velocity_hat"]
        param -= self.step_size * m / (np.sqrt(v) + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
        return {**config, "amsgrad": True} if self.amsgrad else config


class AdamW(Adam):
    """keras.optimizers.AdamW: Adam with decoupled weight decay, p -= p * weight_decay * lr before
    each Adam step (default weight_decay 0.004)."""

    name = "adamw"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a float, received weight_decay=None")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs
        )


class Nadam(Optimizer):
    """keras.optimizers.Nadam (Dozat's Nesterov Adam with the momentum schedule
    u_t = b1 (1 - 0.5 * 0.96^t) and U_t = u_1 ... u_t):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    m_hat = u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t);  v_hat = v / (1 - b2^t);
    p -= lr * m_hat / (sqrt(v_hat) + eps)."""

    name = "nadam"
    slot_names = ("momentum", "velocity")

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def momentum_schedule(self, t: int) -> float:
        return self.beta_1 * (1 - 0.5 * 0.96**t)

    def begin_step(self, t: int, lr: float) -> None:
        self.u_t, self.u_next = self.momentum_schedule(t), self.momentum_schedule(t + 1)
        self.u_product = self.momentum_product(t)
        self.bias_2 = 1 - self.beta_2**t

    def momentum_product(self, t: int) -> float:
        """U_t = u_1 ... u_t, from the last step's product; recomputed from t alone after a restore,
        so a checkpoint needs no extra state."""
        previous = (
            getattr(self, "u_product", None)
            if getattr(self, "u_product_step", None) == t - 1
            else None
        )
        if previous is None:
            previous = math.prod(self.momentum_schedule(i) for i in range(1, t))
        self.u_product_step = t
        return previous * self.momentum_schedule(t)

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        m, v = slot["momentum"], slot["velocity"]
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (grad * grad - v)
        m_hat = self.u_next * m / (1 - self.u_product * self.u_next) + (1 - self.u_t) * grad / (
            1 - self.u_product
        )
        param -= lr * m_hat / (np.sqrt(v / self.bias_2) + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class RMSprop(Optimizer):
    """keras.optimizers.RMSprop: v = rho v + (1 - rho) g^2;  p -= lr * g / sqrt(v + eps)
    (Keras's form)."""

    name = "rmsprop"
    slot_names = ("velocity",)

    def __init__(
        self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-7, **kwargs: Any
    ) -> None:
        refuse_unless_default(
            "RMSprop",
            {k: kwargs.pop(k) for k in ("momentum", "centered") if k in kwargs},
            {"momentum": (0.0,), "centered": (False,)},
        )
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        v = slot["velocity"]
        v *= self.rho
        v += (1 - self.rho) * grad * grad
        param -= lr * grad / np.sqrt(v + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """keras.optimizers.Adagrad: a += g^2 (a starts at 0.1);  p -= lr * g / sqrt(a + eps)."""

    name = "adagrad"
    slot_names = ("accumulator",)

    def __init__(
        self,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_positive(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, zero_ok=True
        )
        self.slot_initial_value, self.epsilon = self.initial_accumulator_value, float(epsilon)

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        a = slot["accumulator"]
        a += grad * grad
        param -= lr * grad / np.sqrt(a + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """keras.optimizers.Adadelta: a = rho a + (1 - rho) g^2;  d = -sqrt(s + eps) / sqrt(a + eps) *
    g; s = rho s + (1 - rho) d^2;  p += lr * d   (Keras keeps a learning rate, default 0.001)."""

    name = "adadelta"
    slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(
        self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(
        self, param: np.ndarray, grad: np.ndarray, slot: dict[str, np.ndarray], lr: float
    ) -> None:
        a, s = slot["accumulated_grad"], slot["accumulated_delta_var"]
        a *= self.rho
        a += (1 - self.rho) * grad * grad
        delta = -(np.sqrt(s + self.epsilon) * grad) / np.sqrt(a + self.epsilon)
        s *= self.rho
        s += (1 - self.rho) * delta * delta
        param += lr * delta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adam, RMSprop, Adadelta, Adagrad, Nadam, AdamW)
}

OptimizerIdentifier = str | Optimizer | type[Optimizer] | dict[str, Any]


def get(identifier: OptimizerIdentifier, learning_rate: float | None = None) -> Optimizer:
    """An optimizer as Keras's ``compile(optimizer=...)`` takes it: a name ("adam", "SGD", ...),
    a class, an instance, or a saved config
    (``get_config()``, or Keras's {"class_name", "config"})."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        cls, config = identifier, {}
    elif isinstance(identifier, dict):
        config = dict(identifier.get("config", identifier))
        cls = by_name(
            str(identifier["class_name"] if "class_name" in identifier else config.get("name", ""))
        )
        config.pop("name", None)
    elif isinstance(identifier, str):
        cls, config = by_name(identifier), {}
    else:
        raise UnsupportedKerasFeature(
            f"optimizer {identifier!r} is not supported; cnnlab supports {supported()}"
        )
    decay = check_positive(cls.__name__, "decay", config.pop("decay", None) or 0.0, zero_ok=True)
    optimizer = (
        cls(**config)
        if learning_rate is None
        else cls(**{**config, "learning_rate": learning_rate})
    )
    optimizer.decay = decay  # a saved Keras 2 decay comes back without a second warning
    return optimizer


def by_name(name: str) -> type[Optimizer]:
    """The optimizer class of a Keras name or class name ("adam", "Adam", "RMSprop"),
    case-insensitive."""
    cls = OPTIMIZERS.get(name.lower())
    if cls is None:
        raise UnsupportedKerasFeature(f"unknown optimizer {name!r}; cnnlab supports {supported()}")
    return cls


def supported() -> str:
    return ", ".join(OPTIMIZERS)
