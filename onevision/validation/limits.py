"""The value ranges the validation gate enforces.

A simulated world records its generator config in world.json, which fixes the id ranges and the
image size; real data without world.json is checked against the open-ended defaults below.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from onevision.world.config import VIEWS

SPLITS: tuple[str, ...] = ("train", "val", "test")  # in time order


@dataclass(frozen=True)
class ContractLimits:
    max_price: float = 100_000.0
    n_categories: int | None = None  # None: only ">= 0" is checked
    n_brands: int | None = None
    n_price_bands: int = 5
    n_age_bands: int = 5
    click_rate_min: float = 0.005  # exclusive
    click_rate_max: float = 0.6  # exclusive
    image_shape: tuple[int, int, int] | None = None  # None: the most common decoded shape
    views: tuple[str, ...] = VIEWS
    splits: tuple[str, ...] = SPLITS
    slate_size: int | None = None  # None: positions are checked against each slate's own length


def limits_for_world(world_dir: Path) -> ContractLimits:
    """Limits from `world_dir/world.json` when present, else the defaults."""
    from onevision.world.io import WORLD_META

    meta_path = Path(world_dir) / WORLD_META
    if not meta_path.exists():
        return ContractLimits()
    try:
        cfg = json.loads(meta_path.read_text())["config"]
        size = int(cfg["image_size"])
        return ContractLimits(
            n_categories=int(cfg["categories"]),
            n_brands=int(cfg["brands"]),
            n_price_bands=int(cfg["price_bands"]),
            image_shape=(size, size, 3),
            slate_size=int(cfg["slate_size"]) if "slate_size" in cfg else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{meta_path} is not a valid world description (expected {{'config': {{'image_size', "
            f"'categories', 'brands', 'price_bands', ...}}}}): {type(exc).__name__}: {exc}"
        ) from exc
