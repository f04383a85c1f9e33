"""Stage 2: pre-rank, logistic regression on cheap non-personal features of the recall candidates."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from onevision.cascade.candidates import BASE_FEATURES, Candidates, base_features, top_categories
from onevision.cascade.config import PreRankConfig, ScorerConfig
from onevision.cascade.items import ItemTable
from onevision.cascade.logged import LoggedQueries, PairSet, pair_base_features, sample_unshown
from onevision.cascade.scorer import Scorer

CONFIG_FILE = "prerank.json"


class PreRanker:
    def __init__(self, scorer: Scorer, items: ItemTable, config: PreRankConfig = PreRankConfig()):
        if scorer.feature_names != list(BASE_FEATURES):
            raise ValueError(f"pre-rank scorer expects features {list(BASE_FEATURES)}, got {scorer.feature_names}")
        self.scorer = scorer
        self.items = items
        self.config = config

    def features(self, recalled: Candidates) -> np.ndarray:
        """Base features (B, N, F) of recall candidates in recall order."""
        b, n = recalled.item_ids.shape
        rows = self.items.rows(recalled.item_ids)
        rank = np.broadcast_to(np.arange(n), (b, n))
        top_sim = recalled.sim[:, 0] if n else np.zeros(b, np.float32)
        tops = top_categories(recalled.item_ids, self.items, self.config.agree_k)
        feats = base_features(recalled.sim, rank, top_sim, tops, rows, self.items)
        return np.where(recalled.valid[:, :, None], feats, 0.0).astype(np.float32)

    def __call__(self, recalled: Candidates, m: int | None = None) -> Candidates:
        """The top m (default config.m) candidates by pre-rank score, carrying their base features."""
        feats = self.features(recalled)
        logits = self.scorer(feats)
        with_feats = replace(recalled, base=feats, prerank=np.where(recalled.valid, logits, 0.0).astype(np.float32))
        return with_feats.sorted_by(logits, self.config.m if m is None else m)

    @classmethod
    def fit(cls, logged: LoggedQueries, recalled: Candidates, items: ItemTable, config: PreRankConfig = PreRankConfig(),
            scorer: ScorerConfig = ScorerConfig(), negatives: int = 10, holdout_fraction: float = 0.1, seed: int = 0,
            progress: bool = True) -> PreRanker:
        """Clicks on logged slates (+ `negatives` unshown recall candidates per query, label 0) as labels; the
        latest `holdout_fraction` of the queries picks the epoch."""
        rng = np.random.default_rng([seed, 2])
        pairs = PairSet.build(logged, sample_unshown(recalled.item_ids, logged.slate, negatives, rng))
        tops = top_categories(recalled.item_ids, items, config.agree_k)
        feats = pair_base_features(logged.emb, items, pairs.item_ids, tops)
        mask, y, w, held = pairs.labels(0.0, logged.holdout(holdout_fraction))
        fitted = Scorer.fit(feats[mask], y, w, list(BASE_FEATURES), scorer, held, "pre-rank", progress)
        return cls(fitted, items, config)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.scorer.save(directory)
        self.items.save(directory)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PreRanker:
        directory = Path(directory)
        if not (directory / CONFIG_FILE).exists():
            raise FileNotFoundError(f"pre-rank artifact missing: {directory / CONFIG_FILE}")
        config = PreRankConfig(**json.loads((directory / CONFIG_FILE).read_text()))
        return cls(Scorer.load(directory), ItemTable.load(directory), config)
