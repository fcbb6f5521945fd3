"""The playground's settings (``PlaygroundSettings``): everything that decides a playground run,
kept in the page's URL query, each value checked with a message that names it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..engine import optimizers
from ..engine.activations import ACTIVATIONS
from ..errors import CnnlabError

HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")


@dataclass
class PlaygroundSettings:
    """Everything that decides a playground run; the page keeps it in its URL query."""

    function: str = "ring-band"
    samples: int = 2000
    noise: float = 0.0
    test_fraction: float = 0.2
    layers: str = "16,16"  # units of each hidden Dense layer, comma-separated ("" for none)
    activation: str = "tanh"
    dropout: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 0.03
    batch_size: int = 32
    seed: int = 0

    @classmethod
    def from_query(cls, query: dict[str, str]) -> PlaygroundSettings:
        """Settings from URL query values (strings); unknown keys are ignored; CnnlabError names a
        bad value."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in query:
                values[item.name] = _convert(
                    item.name, str(query[item.name]), type(getattr(cls(), item.name))
                )
        settings = cls(**values)
        settings.validate()
        return settings

    def units(self) -> list[int]:
        return [int(part) for part in self.layers.split(",") if part.strip()]

    def validate(self) -> None:
        """CnnlabError naming the first setting out of its range."""
        try:
            units = self.units()
        except ValueError:
            raise CnnlabError(
                "layers must be numbers of units separated by commas, e.g. 8,8; received "
                f"{self.layers!r}"
            ) from None
        for ok, message in [*self.data_checks(), *self.network_checks(units)]:
            if not ok:
                raise CnnlabError(message)

    def data_checks(self) -> list[tuple[bool, str]]:
        """(passes, message) for the data settings: samples, noise, test fraction."""
        return [
            (
                100 <= self.samples <= 20_000,
                f"samples must be between 100 and 20,000, received {self.samples}",
            ),
            (
                0 <= self.noise <= 0.5 or False,
                f"noise must be between 0 and 0.5, received {self.noise}",
            ),
            (
                0.05 <= self.test_fraction <= 0.9,
                f"test fraction must be between 0.05 and 0.9, received {self.test_fraction}",
            ),
        ]

    def network_checks(self, units: list[int]) -> list[tuple[bool, str]]:
        """(passes, message) for the network and its training: layers, activation, dropout,
        optimizer, learning rate, batch size, seed."""
        return [
            (
                len(units) <= 6 and all(1 <= u <= 64 for u in units),
                f"use at most 6 hidden layers of 1 to 64 units, received {self.layers!r}",
            ),
            (
                self.activation in HIDDEN_ACTIVATIONS,
                f"activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}, received "
                f"{self.activation!r}",
            ),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), received {self.dropout}"),
            (
                self.optimizer in optimizers.OPTIMIZERS,
                f"optimizer must be one of {', '.join(optimizers.OPTIMIZERS)}, received "
                f"{self.optimizer!r}",
            ),
            (
                0 < self.learning_rate <= 10 and math.isfinite(self.learning_rate),
                f"learning rate must be in (0, 10], received {self.learning_rate}",
            ),
            (
                1 <= self.batch_size <= 1024,
                f"batch size must be between 1 and 1024, received {self.batch_size}",
            ),
            (0 <= self.seed < 2**32, f"seed must be between 0 and 2**32 - 1, received {self.seed}"),
        ]


def _convert(name: str, text: str, kind: type) -> Any:
    try:
        return kind(text) if kind is not int else int(text, 10)
    except ValueError:
        raise CnnlabError(
            f"{name} must be a{'n integer' if kind is int else ' number'}, received {text!r}"
        ) from None
