"""Stage 3: the personalised ranker, an MLP on user x item features trained on logged clicks
(orders weighted higher)."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from onevision.cascade.candidates import BASE_FEATURES, Candidates, top_categories
from onevision.cascade.config import RankConfig, ScorerConfig
from onevision.cascade.items import ItemTable
from onevision.cascade.logged import LoggedQueries, PairSet, pair_base_features, sample_unshown
from onevision.cascade.prerank import PreRanker
from onevision.cascade.scorer import Scorer
from onevision.featurestore.source import UserFeatureSource
from onevision.userfeatures import SIGNALS, UserFeatureTable

_AFFINITY_ATTRIBUTES: tuple[str, ...] = ("brand", "price_band", "category")
USER_ITEM_FEATURES: tuple[str, ...] = (
    *(f"{attr}_{signal}_lift" for signal in SIGNALS for attr in _AFFINITY_ATTRIBUTES),
    "price_fit", "declared_match", "log_queries", "history_sim_max", "history_sim_mean", "in_history", "known",
)
RANK_FEATURES: tuple[str, ...] = (*BASE_FEATURES, "prerank", *USER_ITEM_FEATURES)
CONFIG_FILE = "rank.json"
USERS_DIR = "users"


def user_item_features(users: UserFeatureSource, items: ItemTable, user_ids: np.ndarray, item_rows: np.ndarray,
                       history: int, exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
    """(B, K, len(USER_ITEM_FEATURES)) for users (B,) and candidate item rows (B, K)."""
    ex = {"exclude_query_ids": exclude_query_ids}
    cols = []
    for signal in SIGNALS:
        for attr in _AFFINITY_ATTRIBUTES:
            values = getattr(items, attr)[item_rows]
            cols.append(users.affinity(attr, user_ids, values, signal=signal, **ex))
    declared, sensitivity, log_queries = users.profile(user_ids, **ex)
    cheapness = 1.0 - items.price_band[item_rows] / max(items.n_price_bands - 1, 1)
    cols.append(-np.abs(sensitivity[:, None] - cheapness))
    cols.append(items.category[item_rows] == declared[:, None])
    cols.append(np.broadcast_to(log_queries[:, None], item_rows.shape))
    hist = users.history(user_ids, history, **ex)
    hist_ok = hist >= 0
    hist_emb = items.emb[items.rows(hist)] * hist_ok[:, :, None]
    sims = np.einsum("bkd,bnd->bkn", items.emb[item_rows], hist_emb)
    n_hist = hist_ok.sum(1)[:, None]
    cols.append(np.where(n_hist > 0, np.where(hist_ok[:, None, :], sims, -np.inf).max(2, initial=-np.inf), 0.0))
    cols.append(sims.sum(2) / np.maximum(n_hist, 1))
    cand_ids = items.item_ids[item_rows]
    cols.append(((cand_ids[:, :, None] == hist[:, None, :]) & hist_ok[:, None, :]).any(2))
    cols.append(np.broadcast_to(users.known(user_ids)[:, None], item_rows.shape))
    return np.stack([np.asarray(c, np.float32) for c in cols], axis=-1)


def rank_features(candidates: Candidates, user_ids: np.ndarray, items: ItemTable, users: UserFeatureSource,
                  history: int, exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
    """(B, K, len(RANK_FEATURES)) for pre-ranked candidates (B, K) of users (B,); zeros at padding."""
    if candidates.base is None or candidates.prerank is None:
        raise ValueError("the ranker needs candidates from the pre-ranker (base features and pre-rank scores)")
    rows = items.rows(candidates.item_ids)
    personal = user_item_features(users, items, user_ids, rows, history, exclude_query_ids)
    feats = np.concatenate([candidates.base, candidates.prerank[:, :, None], personal], axis=-1)
    return np.where(candidates.valid[:, :, None], feats, 0.0).astype(np.float32)


class Ranker:
    def __init__(self, scorer: Scorer, items: ItemTable, users: UserFeatureSource, config: RankConfig = RankConfig()):
        if scorer.feature_names != list(RANK_FEATURES):
            raise ValueError(f"rank scorer expects features {list(RANK_FEATURES)}, got {scorer.feature_names}")
        self.scorer = scorer
        self.items = items
        self.users = users
        self.config = config

    def features(self, candidates: Candidates, user_ids: np.ndarray) -> np.ndarray:
        return rank_features(candidates, user_ids, self.items, self.users, self.config.history)

    def __call__(self, candidates: Candidates, user_ids: np.ndarray | None, k: int | None = None) -> Candidates:
        """Candidates (B, M) re-ordered by the personalised score; the top k (default all). user_ids None or -1:
        the population fallback."""
        b = len(candidates)
        users = np.full(b, -1, np.int64) if user_ids is None else np.asarray(user_ids, np.int64).reshape(-1)
        if users.shape != (b,):
            raise ValueError(f"expected {b} user ids, got shape {users.shape}")
        logits = self.scorer(self.features(candidates, users))
        return candidates.sorted_by(logits, candidates.item_ids.shape[1] if k is None else k)

    @classmethod
    def fit(cls, logged: LoggedQueries, recalled: Candidates, prerank: PreRanker, items: ItemTable,
            users: UserFeatureTable, config: RankConfig = RankConfig(), scorer: ScorerConfig = ScorerConfig(),
            negatives: int = 10, order_weight: float = 2.0, unknown_user_rate: float = 0.1,
            holdout_fraction: float = 0.1, seed: int = 0, progress: bool = True) -> Ranker:
        """Logged slates (clicks as labels, orders weighted 1 + order_weight) plus `negatives` unshown
        pre-rank candidates per query. User features leave the query itself out, so no row sees its label;
        the latest `holdout_fraction` of the queries picks the epoch."""
        rng = np.random.default_rng([seed, 3])
        preranked = prerank(recalled)
        pairs = PairSet.build(logged, sample_unshown(preranked.item_ids, logged.slate, negatives, rng))
        tops = top_categories(recalled.item_ids, items, prerank.config.agree_k)
        base = pair_base_features(logged.emb, items, pairs.item_ids, tops)
        hidden = rng.random(len(logged)) < unknown_user_rate
        user_ids = np.where(hidden, -1, logged.user_ids)
        cands = Candidates(pairs.item_ids, np.zeros(pairs.item_ids.shape, np.float32), base[:, :, 0], logged.emb,
                           base=base, prerank=prerank.scorer(base))
        feats = rank_features(cands, user_ids, items, users, config.history, exclude_query_ids=logged.query_ids)
        mask, y, w, held = pairs.labels(order_weight, logged.holdout(holdout_fraction))
        fitted = Scorer.fit(feats[mask], y, w, list(RANK_FEATURES), scorer, held, "rank", progress)
        return cls(fitted, items, users, config)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.scorer.save(directory)
        self.items.save(directory)
        self.users.save(directory / USERS_DIR)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        directory = Path(directory)
        if not (directory / CONFIG_FILE).exists():
            raise FileNotFoundError(f"rank artifact missing: {directory / CONFIG_FILE}")
        config = RankConfig(**json.loads((directory / CONFIG_FILE).read_text()))
        users = UserFeatureTable.load(directory / USERS_DIR)
        return cls(Scorer.load(directory), ItemTable.load(directory), users, config)

