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
    # Each refinement step sees at most this many items (a fresh seeded sample per step, with their views): a step
    # scores every row against the codebook, 137 s for 150 steps at 10k items. Every item is still coded.
    refine_max_items: int | None = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attribute_level is not None and not 0 < self.attribute_level < len(self.codebook_sizes):
            raise ValueError(
                f"attribute_level must be a level in [1, {len(self.codebook_sizes)}) (level 0 holds the category "
                f"partition), got {self.attribute_level}"
            )
        if self.refine_max_items is not None and self.refine_max_items < 1:
            raise ValueError(f"refine_max_items must be >= 1 or None, got {self.refine_max_items}")
