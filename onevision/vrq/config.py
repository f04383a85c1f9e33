"""VRQ's configuration, apart from the quantiser so that step configs and CLI defaults load without numpy."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VRQConfig:
    codebook_sizes: tuple[int, ...] = (256, 256, 256)
    aligned_levels: int = 2
    category_partition: bool = True
    rotate_last: bool = True
    temperature: float = 0.1
    refine_steps: int = 150
    lr: float = 0.02
    anchor_weight: float = 1.0
    attribute_level: int | None = None  # level whose code is the item's attribute code (None: none)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attribute_level is not None and not 0 < self.attribute_level < len(self.codebook_sizes):
            raise ValueError(
                f"attribute_level must be a level in [1, {len(self.codebook_sizes)}) (level 0 holds the category "
                f"partition), got {self.attribute_level}"
            )
