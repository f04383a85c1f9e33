"""The retriever contract (docs/contracts.md): what every model offers the evaluation harness, the serving
core and the A/B replay, and the result types it answers with.

Images are uint8 (B, H, W, 3); user ids int64 (B,) or None (non-personalised), -1 an unknown user.
A model that personalises says for whom through `PersonalisedRetriever.known_users` (the one known-user
check); a model that decodes Semantic IDs is a `SidRetriever` and reports them with its ranking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Ranking:
    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    scores: np.ndarray  # float32 (B, k), higher is better

    def __post_init__(self) -> None:
        self.item_ids = np.asarray(self.item_ids, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        if self.item_ids.ndim != 2 or self.item_ids.shape != self.scores.shape:
            raise ValueError(
                f"Ranking expects item_ids and scores of the same shape (B, k); "
                f"got {self.item_ids.shape} and {self.scores.shape}"
            )


class SidRanking(Protocol):
    """A ranking with each item's Semantic ID (e.g. `onevision.generator.decode.DecodeResult`)."""

    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    sids: np.ndarray  # int64 (B, k, depth), -1 pads
    scores: np.ndarray  # float (B, k): higher is better; -inf pads


@runtime_checkable
class Retriever(Protocol):
    name: str

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking: ...


@runtime_checkable
class SidRetriever(Retriever, Protocol):
    """A retriever that generates Semantic IDs: `decode` is `retrieve` with each item's SID."""

    def decode(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> SidRanking: ...


@runtime_checkable
class PersonalisedRetriever(Retriever, Protocol):
    """A retriever with a user table: `known_users(ids)` is the bool mask (B,) of the users it personalises
    for (none when the model was trained without user features); the others get the non-personalised path."""

    def known_users(self, user_ids: np.ndarray) -> np.ndarray: ...
