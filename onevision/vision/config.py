"""The encoder's architecture and training configs, apart from the torch modules so that step configs and CLI
defaults load without torch."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderConfig:
    image_size: int = 64
    widths: tuple[int, ...] = (32, 64, 96, 128)
    embed_dim: int = 128

    @property
    def token_dim(self) -> int:
        return self.widths[-1]

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** len(self.widths)

    @property
    def n_tokens(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class EncoderTrainConfig:
    epochs: int = 20
    items_per_batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    circle_weight: float = 0.5
    augment_strength: float = 1.0
    seed: int = 0
    threads: int | None = None
    # Step budget: at most this many optimiser steps in all (each epoch trains its first max_steps / epochs
    # batches). The default world trains 320 steps; a 100k-item catalogue would take 31k.
    max_steps: int | None = 1000

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.items_per_batch < 2 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError(f"invalid encoder training config (epochs >= 1, items_per_batch >= 2, max_steps >= 1 "
                             f"or None): {self}")

    def batches_per_epoch(self, available: int) -> int:
        """How many of an epoch's `available` batches are trained under the step budget."""
        if self.max_steps is None:
            return available
        return min(available, -(-self.max_steps // self.epochs))
