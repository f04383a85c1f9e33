"""Typed configuration of the synthetic world."""
from __future__ import annotations

from dataclasses import dataclass, field

VIEWS: tuple[str, ...] = ("front", "side", "back", "detail", "zoom")

DISCREPANCY_LEVELS: dict[str, float] = {"easy": 0.25, "medium": 0.5, "hard": 0.75, "very-hard": 1.0}


def parse_discrepancy(value: str | float) -> float:
    """Accept a named level (easy … very-hard) or a number in [0, 1]."""
    if isinstance(value, (int, float)):
        level = float(value)
    elif value in DISCREPANCY_LEVELS:
        level = DISCREPANCY_LEVELS[value]
    else:
        try:
            level = float(value)
        except ValueError:
            raise ValueError(
                f"discrepancy must be one of {sorted(DISCREPANCY_LEVELS)} or a number in [0, 1], got {value!r}"
            ) from None
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"discrepancy must lie in [0, 1], got {level}")
    return level


@dataclass(frozen=True)
class DriftConfig:
    """Changes applied to sessions on days >= start_day (the monitoring period)."""

    start_day: int | None = None
    preference_shift: float = 0.0  # 0..1: share of each user's brand preference moved to other brands
    camera_degradation: float = 0.0  # added to the query photo discrepancy
    new_item_share: float = 0.0  # share of catalogue items that only appear from start_day on

    @property
    def active(self) -> bool:
        return self.start_day is not None and (
            self.preference_shift > 0 or self.camera_degradation > 0 or self.new_item_share > 0
        )


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    items: int = 1000
    users: int = 300
    days: int = 14
    queries_per_day: int = 400
    image_size: int = 64
    discrepancy: float = 0.5
    categories: int = 8
    brands: int = 16
    price_bands: int = 5
    family_size: int = 4  # items per near-duplicate family (same shape and pattern)
    slate_size: int = 10
    train_days: int = 10
    val_days: int = 2
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        checks = {
            "items": self.items >= 8,
            "users": self.users >= 2,
            "days": self.days >= 3,
            "queries_per_day": self.queries_per_day >= 1,
            "image_size": self.image_size in (32, 48, 64, 96, 128),
            "categories": 1 <= self.categories <= 10,
            "brands": 2 <= self.brands <= 64,
            "family_size": self.family_size >= 1,
            "slate_size": 1 <= self.slate_size <= self.items,
            "train_days": 1 <= self.train_days and self.train_days + self.val_days < self.days,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid world configuration for {', '.join(bad)}: {self}")
        parse_discrepancy(self.discrepancy)

    @property
    def test_start_day(self) -> int:
        return self.train_days + self.val_days

    def split_of_day(self, day: int) -> str:
        if day < self.train_days:
            return "train"
        if day < self.test_start_day:
            return "val"
        return "test"
