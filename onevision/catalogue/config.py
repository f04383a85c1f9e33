"""The refresh's typed configs, importable without numpy (CLI defaults, `onevision.steps`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from onevision.generator.finetune import FinetuneConfig


@dataclass(frozen=True)
class RefreshConfig:
    finetune: FinetuneConfig | None = field(default_factory=FinetuneConfig)  # None: SIDs and trie only (zero-shot)
    version: str | None = None  # the new bundle's version (default: the time it is written)
    # Cascade: the click count a new item starts with (its popularity feature). "neighbours": the mean of its
    # NEIGHBOUR_CLICKS visually nearest listed items'; "zero": none (it ranks below every clicked item).
    cold_start_clicks: str = "neighbours"
    # The neighbours' prior times this: on the default world 1.0 finds new items as well as old ones (0.71 / 0.70)
    # and costs old items 2.6 pts, 0.5 costs them 1.1 and finds new ones at 0.56, 0.25 keeps old ones and finds
    # 0.37 (bench/catalogue_refresh.py). No scale meets the refresh gate there.
    cold_start_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.cold_start_clicks not in COLD_START:
            raise ValueError(f"cold_start_clicks must be one of {COLD_START}, got {self.cold_start_clicks!r}")
        if not self.cold_start_scale >= 0:
            raise ValueError(f"cold_start_scale must be >= 0, got {self.cold_start_scale!r}")


COLD_START = ("neighbours", "zero")
NEIGHBOUR_CLICKS = 5


@dataclass(frozen=True)
class ListingEvalConfig:
    split: str = "test"
    k: int = 10
    batch_size: int = 64
    max_queries: int | None = None
    personalised: bool = True  # pass the query's user (as the harness does)
