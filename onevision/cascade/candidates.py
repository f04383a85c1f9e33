"""The candidate lists that flow between stages, and the cheap per-candidate features they carry."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from onevision.cascade.items import ItemTable

BASE_FEATURES: tuple[str, ...] = ("sim", "sim_gap", "log_rank", "log_popularity", "category_agreement")


@dataclass(frozen=True)
class Candidates:
    """Per query, candidates best first. Padding: item id -1, score -inf, features 0."""

    item_ids: np.ndarray  # int64 (B, N)
    scores: np.ndarray  # float32 (B, N): the score of the stage that produced the list
    sim: np.ndarray  # float32 (B, N): ANN inner product with the query embedding
    query_emb: np.ndarray  # float32 (B, D)
    base: np.ndarray | None = None  # float32 (B, N, len(BASE_FEATURES)), set by the pre-ranker
    prerank: np.ndarray | None = None  # float32 (B, N): pre-rank logit

    @property
    def valid(self) -> np.ndarray:
        return self.item_ids >= 0

    def __len__(self) -> int:
        return len(self.item_ids)

    def take(self, order: np.ndarray) -> Candidates:
        """Reorder/subset every per-candidate array with column indices `order` (B, M)."""
        def t(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            idx = order if a.ndim == 2 else order[:, :, None]
            return np.take_along_axis(a, idx, axis=1)

        return replace(self, item_ids=t(self.item_ids), scores=t(self.scores), sim=t(self.sim), base=t(self.base),
                       prerank=t(self.prerank))

    def rows(self, b: slice) -> Candidates:
        """The queries `b` of the batch."""
        def r(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[b]

        return Candidates(self.item_ids[b], self.scores[b], self.sim[b], self.query_emb[b], r(self.base),
                          r(self.prerank))

    def sorted_by(self, scores: np.ndarray, top: int) -> Candidates:
        """The `top` best candidates by `scores` (B, N) (padding last), with `scores` as the new score."""
        scores = np.where(self.valid, scores, -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        return replace(self.take(order), scores=np.take_along_axis(scores, order, axis=1))


def base_features(
    sim: np.ndarray, rank: np.ndarray, top_sim: np.ndarray, top_cats: np.ndarray, item_rows: np.ndarray,
    items: ItemTable,
) -> np.ndarray:
    """Cheap, non-personal features of candidates (B, K).

    sim: inner product with the query; rank: 0-based rank of the item among all items by sim;
    top_sim (B,): the best sim of the query; top_cats (B, k): categories of the query's top-k recall
    candidates (their vote on what the photo shows); item_rows (B, K): rows in `items`.
    """
    category = items.category[item_rows]
    agreement = (category[:, :, None] == top_cats[:, None, :]).mean(axis=2)
    return np.stack(
        [sim, sim - top_sim[:, None], np.log1p(rank), items.log_popularity[item_rows], agreement], axis=-1
    ).astype(np.float32)


def top_categories(recall_item_ids: np.ndarray, items: ItemTable, k: int) -> np.ndarray:
    """Categories of each query's top-k recall candidates (B, k), -1 for padding: their vote on what the photo shows."""
    top = recall_item_ids[:, :k]
    return np.where(top >= 0, items.category[items.rows(top)], -1)
