"""The refresh's typed configs, importable without numpy (CLI defaults, `onevision.steps`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from onevision.generator.finetune import FinetuneConfig


@dataclass(frozen=True)
class RefreshConfig:
    finetune: FinetuneConfig | None = field(default_factory=FinetuneConfig)  # None: SIDs and trie only (zero-shot)
    version: str | None = None  # the new bundle's version (default: the time it is written)


@dataclass(frozen=True)
class ListingEvalConfig:
    split: str = "test"
    k: int = 10
    batch_size: int = 64
    max_queries: int | None = None
    personalised: bool = True  # pass the query's user (as the harness does)
