from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from onevision.cascade import Cascade, PreRanker
from onevision.cascade.logged import LoggedQueries


def _recalled(cascade: Cascade, batch):
    return cascade.recall(cascade.embed(batch[0]))


def test_prerank_keeps_the_m_best_recall_candidates(tiny_cascade: Cascade, test_batch) -> None:
    recalled = _recalled(tiny_cascade, test_batch)
    out = tiny_cascade.prerank(recalled)
    m = tiny_cascade.prerank.config.m
    assert out.item_ids.shape == (len(recalled), m)
    assert all(set(o) <= set(r) for o, r in zip(out.item_ids.tolist(), recalled.item_ids.tolist()))
    assert (np.diff(out.scores, axis=1) <= 0).all()
    assert out.base is not None and out.base.shape[:2] == out.item_ids.shape


def test_batched_prerank_equals_per_query_calls(tiny_cascade: Cascade, test_batch) -> None:
    recalled = _recalled(tiny_cascade, test_batch)
    batched = tiny_cascade.prerank(recalled)
    single = [tiny_cascade.prerank(recalled.rows(slice(i, i + 1))) for i in range(len(recalled))]
    assert np.array_equal(batched.item_ids, np.concatenate([s.item_ids for s in single]))
    np.testing.assert_allclose(batched.scores, np.concatenate([s.scores for s in single]), rtol=1e-5, atol=1e-6)


def test_prerank_save_then_load_gives_identical_outputs(tiny_cascade: Cascade, test_batch, tmp_path: Path) -> None:
    recalled = _recalled(tiny_cascade, test_batch)
    loaded = PreRanker.load(tiny_cascade.prerank.save(tmp_path / "prerank"))
    a, b = tiny_cascade.prerank(recalled), loaded(recalled)
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.scores, b.scores)


def test_prerank_training_is_deterministic_by_seed(tiny_cascade: Cascade, tiny_world) -> None:
    logged = LoggedQueries.from_world(tiny_world, tiny_cascade.encoder, progress=False)
    recalled = tiny_cascade.recall(logged.emb)
    cfg = tiny_cascade.config

    def fit(seed: int) -> PreRanker:
        scorer = replace(cfg.prerank_scorer, seed=seed)
        return PreRanker.fit(logged, recalled, tiny_cascade.prerank.items, cfg.prerank_config, scorer,
                             cfg.prerank_negatives, cfg.holdout_fraction, seed, progress=False)

    a, b, c = fit(0), fit(0), fit(1)
    assert all(np.array_equal(x, y) for x, y in zip(a.scorer.weights, b.scorer.weights))
    assert not np.array_equal(a.scorer.weights[0], c.scorer.weights[0])
