"""Typed configuration: one flat `CascadeConfig` (one CLI flag per knob) and the per-stage configs
derived from it, which each stage saves beside its weights."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal


LEGACY_RUNTIME_KEYS = ("progress",)  # saved into cascade.json before it became a fit() argument; ignored on load


@dataclass(frozen=True)
class RecallConfig:
    n: int = 200  # candidates per query
    # auto: exact (flat) up to flat_max_items items, a graph index (HNSW) above, where a flat scan of every item
    # per query costs more than the rest of the cascade (`bench/catalogue_scale.py`).
    index: Literal["auto", "flat", "hnsw"] = "auto"
    hnsw_m: int = 32
    hnsw_ef_search: int = 256
    flat_max_items: int = 50_000

    def __post_init__(self) -> None:
        if (self.n < 1 or self.index not in INDEX_KINDS or self.hnsw_m < 2 or self.hnsw_ef_search < 1
                or self.flat_max_items < 1):
            raise ValueError(f"invalid recall config (n >= 1, index {'|'.join(INDEX_KINDS)}, hnsw_m >= 2, "
                             f"ef_search >= 1, flat_max_items >= 1): {self}")

    def index_for(self, n_items: int) -> str:
        """The faiss index kind built for a catalogue of n_items."""
        if self.index != "auto":
            return self.index
        return "flat" if n_items <= self.flat_max_items else "hnsw"


INDEX_KINDS = ("auto", "flat", "hnsw")


@dataclass(frozen=True)
class ScorerConfig:
    """A small MLP trained with torch and scored with numpy; hidden=() is logistic regression."""

    hidden: tuple[int, ...] = ()
    epochs: int = 6
    lr: float = 0.01
    batch_size: int = 512
    weight_decay: float = 1e-4
    seed: int = 0
    min_steps: int = 300  # small data sets train for more epochs, up to this many optimiser steps
    patience: int = 3  # epochs without a better holdout loss before training stops

    def __post_init__(self) -> None:
        if (any(h < 1 for h in self.hidden) or self.epochs < 1 or self.lr <= 0 or self.batch_size < 1
                or self.weight_decay < 0 or self.min_steps < 0 or self.patience < 1):
            raise ValueError(
                "invalid scorer config (hidden sizes >= 1, epochs >= 1, lr > 0, batch_size >= 1, weight_decay >= 0, "
                f"min_steps >= 0, patience >= 1): {self}"
            )

    def epochs_for(self, rows: int) -> int:
        steps = -(-rows // self.batch_size)
        return max(self.epochs, -(-self.min_steps // steps))


@dataclass(frozen=True)
class PreRankConfig:
    m: int = 50  # candidates kept
    agree_k: int = 5  # category agreement is measured against the query's top agree_k recall candidates

    def __post_init__(self) -> None:
        if self.m < 1 or self.agree_k < 1:
            raise ValueError(f"invalid pre-rank config (m >= 1, agree_k >= 1): {self}")


@dataclass(frozen=True)
class RankConfig:
    history: int = 8  # the user's last clicked items compared with each candidate

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError(f"invalid rank config (history >= 1): {self}")


@dataclass(frozen=True)
class CascadeConfig:
    # ANN recall
    recall_n: int = 200
    index: Literal["auto", "flat", "hnsw"] = "auto"  # RecallConfig.index
    hnsw_m: int = 32
    hnsw_ef_search: int = 256
    flat_max_items: int = 50_000
    # pre-rank (logistic regression on cheap features)
    # 100, not 50: the pre-ranker's top 50 held the photographed item less often than the ANN's own top 50
    # (recall@50 0.853 vs 0.908 on the default world), capping what the ranker could do.
    prerank_m: int = 100
    agree_k: int = 5
    prerank_negatives: int = 10  # unshown recall candidates per logged query, labelled 0
    prerank_epochs: int = 10
    prerank_lr: float = 0.01
    # personalised rank (MLP on user x item features)
    rank_hidden: tuple[int, ...] = (64, 32)
    rank_negatives: int = 10  # unshown pre-rank candidates per logged query, labelled 0
    rank_epochs: int = 20
    rank_lr: float = 0.003
    history: int = 8
    order_weight: float = 2.0  # extra sample weight of an ordered item (label: clicked)
    unknown_user_rate: float = 0.1  # share of training queries whose user is hidden, to learn the fallback
    # shared
    batch_size: int = 512
    weight_decay: float = 1e-4
    min_steps: int = 300  # small worlds train for more epochs, up to this many optimiser steps
    holdout_fraction: float = 0.1  # latest share of the split's queries held out for early stopping
    patience: int = 3
    user_smoothing: float = 5.0
    encode_batch_size: int = 256
    split: str = "train"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank_hidden", tuple(int(h) for h in self.rank_hidden))
        if self.prerank_negatives < 0 or self.rank_negatives < 0 or self.order_weight < 0:
            raise ValueError(f"negatives and order_weight must be >= 0, got {self}")
        if not 0 <= self.unknown_user_rate < 1 or not 0 <= self.holdout_fraction < 1:
            raise ValueError(
                "unknown_user_rate and holdout_fraction must lie in [0, 1), "
                f"got {self.unknown_user_rate}, {self.holdout_fraction}"
            )
        # validate the derived stage configs early
        self.recall_config, self.prerank_config, self.rank_config  # noqa: B018
        self.prerank_scorer, self.rank_scorer  # noqa: B018

    @property
    def recall_config(self) -> RecallConfig:
        return RecallConfig(self.recall_n, self.index, self.hnsw_m, self.hnsw_ef_search, self.flat_max_items)

    @property
    def prerank_config(self) -> PreRankConfig:
        return PreRankConfig(self.prerank_m, self.agree_k)

    @property
    def rank_config(self) -> RankConfig:
        return RankConfig(self.history)

    @property
    def prerank_scorer(self) -> ScorerConfig:
        return ScorerConfig((), self.prerank_epochs, self.prerank_lr, self.batch_size, self.weight_decay, self.seed,
                            self.min_steps, self.patience)

    @property
    def rank_scorer(self) -> ScorerConfig:
        return ScorerConfig(self.rank_hidden, self.rank_epochs, self.rank_lr, self.batch_size, self.weight_decay,
                            self.seed + 1, self.min_steps, self.patience)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> CascadeConfig:
        data = {k: v for k, v in data.items() if k not in LEGACY_RUNTIME_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown cascade config keys {unknown}; expected some of {sorted(known)}")
        return cls(**data)
