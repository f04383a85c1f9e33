"""Two trivial baselines that serve as sanity floors (Retrievers of onevision.contracts)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from onevision.contracts import Ranking

if TYPE_CHECKING:
    from onevision.world import World


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


class RandomRetriever:
    """Ranks k distinct catalogue items drawn uniformly at random for every query (a floor)."""

    name = "random"

    def __init__(self, item_ids: np.ndarray, seed: int = 0):
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        if self.item_ids.ndim != 1 or len(self.item_ids) == 0:
            raise ValueError(f"RandomRetriever needs a non-empty 1-D array of item ids, got shape {self.item_ids.shape}")
        self._rng = np.random.default_rng(seed)

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        _check_k(k)
        b, n = len(images), len(self.item_ids)
        take = min(k, n)
        keys = self._rng.random((b, n))
        top = np.argpartition(-keys, take - 1, axis=1)[:, :take] if take < n else np.tile(np.arange(n), (b, 1))
        top_keys = np.take_along_axis(keys, top, axis=1)
        order = np.argsort(-top_keys, axis=1, kind="stable")
        items = np.full((b, k), -1, dtype=np.int64)
        scores = np.full((b, k), -np.inf, dtype=np.float32)
        items[:, :take] = self.item_ids[np.take_along_axis(top, order, axis=1)]
        scores[:, :take] = np.take_along_axis(top_keys, order, axis=1)
        return Ranking(items, scores)


class PopularityRetriever:
    """The same list for everyone: items by click count in the training impressions, ties by item id."""

    name = "popularity"

    def __init__(self, ranked_item_ids: np.ndarray, scores: np.ndarray):
        self.ranked_item_ids = np.asarray(ranked_item_ids, dtype=np.int64)
        self.scores = np.asarray(scores, dtype=np.float32)
        if self.ranked_item_ids.shape != self.scores.shape or self.ranked_item_ids.ndim != 1:
            raise ValueError(
                f"PopularityRetriever expects 1-D item ids and scores of equal length; "
                f"got {self.ranked_item_ids.shape} and {self.scores.shape}"
            )

    @classmethod
    def from_clicks(cls, item_ids: np.ndarray, clicked_item_ids: np.ndarray) -> PopularityRetriever:
        """item_ids: the catalogue; clicked_item_ids: one entry per logged click."""
        item_ids = np.unique(np.asarray(item_ids, dtype=np.int64))
        clicked = np.asarray(clicked_item_ids, dtype=np.int64)
        unknown = ~np.isin(clicked, item_ids)
        if unknown.any():
            raise ValueError(f"clicked item ids not in the catalogue: {np.unique(clicked[unknown])[:5].tolist()}")
        counts = np.zeros(len(item_ids), dtype=np.int64)
        np.add.at(counts, np.searchsorted(item_ids, clicked), 1)
        order = np.lexsort((item_ids, -counts))  # most clicks first, then smallest id
        return cls(item_ids[order], counts[order].astype(np.float32))

    @classmethod
    def fit(cls, world: World) -> PopularityRetriever:
        train_ids = world.queries_of("train")["query_id"].to_numpy(np.int64)
        imp = world.impressions
        clicks = imp[imp["clicked"].to_numpy(bool) & imp["query_id"].isin(train_ids).to_numpy()]
        return cls.from_clicks(world.items["item_id"].to_numpy(np.int64), clicks["item_id"].to_numpy(np.int64))

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        _check_k(k)
        take = min(k, len(self.ranked_item_ids))
        items = np.full(k, -1, dtype=np.int64)
        scores = np.full(k, -np.inf, dtype=np.float32)
        items[:take] = self.ranked_item_ids[:take]
        scores[:take] = self.scores[:take]
        b = len(images)
        return Ranking(np.tile(items, (b, 1)), np.tile(scores, (b, 1)))
