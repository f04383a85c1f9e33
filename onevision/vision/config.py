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
