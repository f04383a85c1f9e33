"""Ranking metrics and offline CTR/CVR proxies, as pure numpy functions.

`ranked`: int64 (Q, K) item ids, best first, -1 for an empty slot. Ranking metrics assume one
relevant item per query (`targets`, (Q,)), the photographed product; an item repeated in a list counts
once, at its first position. A cut-off k larger than K treats the missing slots as empty.
"""
from __future__ import annotations

import numpy as np

from onevision.world.behaviour import ListProbabilities


def _as_ranked(ranked: np.ndarray) -> np.ndarray:
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2:
        raise ValueError(f"ranked item ids must be a (Q, K) matrix, got shape {ranked.shape}")
    return ranked


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cut-off k must be >= 1, got {k}")


def first_hit_rank(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """0-based position of the target within the top k, or -1 when it is not there. (Q,) int64."""
    _check_k(k)
    ranked = _as_ranked(ranked)[:, :k]
    targets = np.asarray(targets, dtype=np.int64)
    if targets.shape != (ranked.shape[0],):
        raise ValueError(f"expected targets of shape ({ranked.shape[0]},) for {ranked.shape[0]} queries, got {targets.shape}")
    hits = (ranked == targets[:, None]) & (ranked >= 0)
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def recall_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of queries whose target is in the top k."""
    return _mean(first_hit_rank(ranked, targets, k) >= 0)


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Binary relevance, one relevant item: IDCG = 1, so NDCG = 1 / log2(rank + 2) for a hit at 0-based rank."""
    rank = first_hit_rank(ranked, targets, k)
    return _mean(np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2.0), 0.0))


def mrr_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    rank = first_hit_rank(ranked, targets, k)
    return _mean(np.where(rank >= 0, 1.0 / (np.maximum(rank, 0) + 1.0), 0.0))


def hitrate_at_k(ranked: np.ndarray, ordered: np.ndarray, k: int) -> float:
    """Share of queries with an ordered item in the top k, over the queries whose logged slate had an order.

    ordered: int64 (Q, M) ordered item ids per query, -1 padded; rows of only -1 are excluded.
    NaN when no query has an order.
    """
    _check_k(k)
    ranked = _as_ranked(ranked)[:, :k]
    ordered = np.asarray(ordered, dtype=np.int64)
    if ordered.ndim != 2 or ordered.shape[0] != ranked.shape[0]:
        raise ValueError(f"expected ordered item ids of shape ({ranked.shape[0]}, M), got {ordered.shape}")
    eligible = (ordered >= 0).any(axis=1)
    match = (ranked[:, :, None] == ordered[:, None, :]) & (ordered[:, None, :] >= 0)
    return _mean(match.any(axis=(1, 2))[eligible])


def _proxy_parts(probs: ListProbabilities, ranked: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_k(k)
    ranked = _as_ranked(ranked)[:, :k]
    click = np.asarray(probs.click, dtype=np.float64)[:, :k]
    order = np.asarray(probs.order, dtype=np.float64)[:, :k]
    if click.shape != ranked.shape or order.shape != ranked.shape:
        raise ValueError(
            f"click/order probabilities {click.shape}/{order.shape} do not match the ranked lists {ranked.shape} at k={k}"
        )
    shown = ranked >= 0
    return np.where(shown, click, 0.0), np.where(shown, order, 0.0), shown


def ctr_proxy(probs: ListProbabilities, ranked: np.ndarray, k: int) -> float:
    """Expected clicks per shown (non-empty) slot of the top k. NaN when nothing is shown."""
    click, _, shown = _proxy_parts(probs, ranked, k)
    n_shown = int(shown.sum())
    return float(click.sum() / n_shown) if n_shown else float("nan")


def orders_proxy(probs: ListProbabilities, ranked: np.ndarray, k: int) -> float:
    """Expected orders per query from the top k."""
    _, order, _ = _proxy_parts(probs, ranked, k)
    return _mean(order.sum(axis=1))


def cvr_proxy(probs: ListProbabilities, ranked: np.ndarray, k: int) -> float:
    """Total expected orders / total expected clicks in the top k. NaN when no click is expected."""
    click, order, _ = _proxy_parts(probs, ranked, k)
    total_clicks = click.sum()
    return float(order.sum() / total_clicks) if total_clicks > 0 else float("nan")


def slate_preference(preference: np.ndarray, ranked: np.ndarray, k: int) -> float:
    """Mean preference score of the shown slots 2..k (the slate after the first result), which is what
    personalisation acts on. preference: (Q, K) float, aligned with `ranked`. NaN when nothing is shown there."""
    _check_k(k)
    ranked = _as_ranked(ranked)[:, 1:k]
    pref = np.asarray(preference, dtype=np.float64)[:, 1:k]
    if pref.shape != ranked.shape:
        raise ValueError(f"preference scores {pref.shape} do not match the ranked lists {ranked.shape} at k={k}")
    shown = ranked >= 0
    return float(pref[shown].mean()) if shown.any() else float("nan")


def lift(with_users: float, without_users: float) -> float:
    """Ratio of a metric with user ids to the same model's metric without them; NaN when undefined."""
    if not np.isfinite(with_users) or not np.isfinite(without_users) or without_users <= 0:
        return float("nan")
    return float(with_users / without_users)
