"""Keras's optimizers in PyTorch, update for update (``make_torch_optimizer`` picks one).

``KerasAdam``, ``KerasRMSprop``, ``KerasSGD`` and the others apply the engine's (Keras's)
update rules operation for operation; torch.optim's Adam and RMSprop put epsilon elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from cnnlab.engine import optimizers as engine_optimizers


class KerasOptimizer(torch.optim.Optimizer):
    """Base: ``step`` calls ``update(param, grad, state, group)`` for every parameter with a
    gradient, after what Keras does around every rule (as the engine's Optimizer.apply): the step's
    rate lr / (1 + decay * iterations) (Keras 2's ``decay``), ``clipnorm``/``clipvalue``, and
    decoupled ``weight_decay`` p -= p * wd * lr. Those arguments sit in the group only when
    given."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            iterations = group.get("iterations", 0)
            step_group = {**group, "lr": group["lr"] / (1 + group.get("decay", 0.0) * iterations)}
            for param in group["params"]:
                if param.grad is not None:
                    if group.get("weight_decay"):
                        param -= param * group["weight_decay"] * step_group["lr"]
                    self.update(
                        param, clip_gradient(param.grad, group), self.state[param], step_group
                    )
            group["iterations"] = iterations + 1
        return loss

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        raise NotImplementedError


def clip_gradient(grad: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
    """Keras's clipnorm (g * c / max(||g||, c), per weight) or clipvalue (clip(g, -c, c))."""
    if group.get("clipnorm") is not None:
        return grad * group["clipnorm"] / max(float(grad.square().sum().sqrt()), group["clipnorm"])
    if group.get("clipvalue") is not None:
        return grad.clamp(-group["clipvalue"], group["clipvalue"])
    return grad


def zero_slots(
    state: dict[str, Any], param: torch.Tensor, names: Iterable[str], initial_value: float = 0.0
) -> None:
    """Create the per-parameter slots on first use, as zeros (Adagrad: its initial value) as the
    engine does."""
    if not state:
        state["step"] = 0
        state.update({name: torch.full_like(param, initial_value) for name in names})
    state["step"] += 1


class KerasSGD(KerasOptimizer):
    """keras.optimizers.SGD: v = momentum v - lr g;  p += v  (nesterov: p += momentum v - lr g)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **common: float,
    ) -> None:
        super().__init__(
            params, {"lr": learning_rate, "momentum": momentum, "nesterov": nesterov, **common}
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, momentum = group["lr"], group["momentum"]
        if momentum == 0:
            param -= lr * grad
            return
        zero_slots(state, param, ["velocity"])
        velocity = state["velocity"]
        velocity *= momentum
        velocity -= lr * grad
        param += momentum * velocity - lr * grad if group["nesterov"] else velocity


class KerasAdam(KerasOptimizer):
    """keras.optimizers.Adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)  (amsgrad: max(v_hat, v) for v).

    torch.optim.Adam adds eps to sqrt(v / (1 - b2^t)) instead: the same for eps -> 0.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(
            params,
            {"lr": learning_rate, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, **common},
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(
            state,
            param,
            ["momentum", "velocity", "velocity_hat"]
            if group.get("amsgrad")
            else ["momentum", "velocity"],
        )
        beta_1, beta_2, t = group["beta_1"], group["beta_2"], state["step"]
        step_size = group["lr"] * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m, v = state["momentum"], state["velocity"]
        m += (1 - beta_1) * (grad - m)
        v += (1 - beta_2) * (grad * grad - v)
        if group.get("amsgrad"):
            v = torch.maximum(state["velocity_hat"], v, out=state["velocity_hat"])
        param -= step_size * m / (v.sqrt() + group["epsilon"])


class KerasAdamW(KerasAdam):
    """keras.optimizers.AdamW: Adam after p -= p * weight_decay * lr
    (default weight_decay 0.004)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        **arguments: float,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay=weight_decay, **arguments)


class KerasNadam(KerasAdam):
    """keras.optimizers.Nadam (Adam's arguments and defaults, its own rule): momentum schedule
    u_t = b1 (1 - 0.5 * 0.96^t), U_t = u_1 ... u_t;
    m_hat = u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t);
    p -= lr m_hat / (sqrt(v / (1 - b2^t)) + eps)."""

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["momentum", "velocity"])
        beta_1, beta_2, t = group["beta_1"], group["beta_2"], state["step"]
        u_t, u_next = beta_1 * (1 - 0.5 * 0.96**t), beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = state["u_product"] = state.get("u_product", 1.0) * u_t
        m, v = state["momentum"], state["velocity"]
        m += (1 - beta_1) * (grad - m)
        v += (1 - beta_2) * (grad * grad - v)
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * grad / (1 - u_product)
        param -= group["lr"] * m_hat / ((v / (1 - beta_2**t)).sqrt() + group["epsilon"])


class KerasAdagrad(KerasOptimizer):
    """keras.optimizers.Adagrad: a += g^2 (a starts at initial_accumulator_value);  p -= lr g /
    sqrt(a + eps)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": learning_rate,
                "initial_accumulator_value": initial_accumulator_value,
                "epsilon": epsilon,
                **common,
            },
        )

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["accumulator"], group["initial_accumulator_value"])
        a = state["accumulator"]
        a += grad * grad
        param -= group["lr"] * grad / (a + group["epsilon"]).sqrt()


class KerasAdadelta(KerasOptimizer):
    """keras.optimizers.Adadelta: a = rho a + (1 - rho) g^2;  d = -sqrt(s + eps) / sqrt(a + eps) g;
    s = rho s + (1 - rho) d^2;  p += lr d."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(params, {"lr": learning_rate, "rho": rho, "epsilon": epsilon, **common})

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["accumulated_grad", "accumulated_delta_var"])
        rho, eps, a, s = (
            group["rho"],
            group["epsilon"],
            state["accumulated_grad"],
            state["accumulated_delta_var"],
        )
        a *= rho
        a += (1 - rho) * grad * grad
        delta = -((s + eps).sqrt() * grad) / (a + eps).sqrt()
        s *= rho
        s += (1 - rho) * delta * delta
        param += group["lr"] * delta


class KerasRMSprop(KerasOptimizer):
    """keras.optimizers.RMSprop: v = rho v + (1 - rho) g^2;  p -= lr g / sqrt(v + eps).

    torch.optim.RMSprop divides by sqrt(v) + eps instead.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        learning_rate: float = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        **common: float,
    ) -> None:
        super().__init__(params, {"lr": learning_rate, "rho": rho, "epsilon": epsilon, **common})

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        zero_slots(state, param, ["velocity"])
        rho, v = group["rho"], state["velocity"]
        v *= rho
        v += (1 - rho) * grad * grad
        param -= group["lr"] * grad / (v + group["epsilon"]).sqrt()


TORCH_OPTIMIZERS: dict[str, type[KerasOptimizer]] = {
    "sgd": KerasSGD,
    "adam": KerasAdam,
    "rmsprop": KerasRMSprop,
    "adadelta": KerasAdadelta,
    "adagrad": KerasAdagrad,
    "nadam": KerasNadam,
    "adamw": KerasAdamW,
}


def make_torch_optimizer(
    engine_optimizer_config: dict[str, Any] | str, params: Iterable[torch.Tensor]
) -> KerasOptimizer:
    """The torch optimizer for ``optimizer.get_config()`` of the engine (or a name: "adam").

    The engine checks the arguments and fills in Keras's defaults first.
    """
    config = engine_optimizers.get(engine_optimizer_config).get_config()
    name = config.pop("name")
    if name not in TORCH_OPTIMIZERS:
        raise ValueError(
            f"the PyTorch reference has no optimizer {name!r}; choose one of "
            f"{', '.join(TORCH_OPTIMIZERS)}"
        )
    return TORCH_OPTIMIZERS[name](params, **config)
