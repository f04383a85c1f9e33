from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onevision.cascade import Cascade, Ranker


def _preranked(cascade: Cascade, batch):
    return cascade.prerank(cascade.recall(cascade.embed(batch[0])))


def test_ranker_reorders_the_preranked_candidates(tiny_cascade: Cascade, test_batch) -> None:
    pre = _preranked(tiny_cascade, test_batch)
    out = tiny_cascade.ranker(pre, test_batch[1])
    assert out.item_ids.shape == pre.item_ids.shape
    assert all(sorted(a) == sorted(b) for a, b in zip(out.item_ids.tolist(), pre.item_ids.tolist()))
    assert (np.diff(out.scores, axis=1) <= 0).all()


def test_batched_ranker_equals_per_query_calls(tiny_cascade: Cascade, test_batch) -> None:
    pre = _preranked(tiny_cascade, test_batch)
    users = test_batch[1]
    batched = tiny_cascade.ranker(pre, users)
    single = [tiny_cascade.ranker(pre.rows(slice(i, i + 1)), users[i : i + 1]) for i in range(len(users))]
    assert np.array_equal(batched.item_ids, np.concatenate([s.item_ids for s in single]))
    np.testing.assert_allclose(batched.scores, np.concatenate([s.scores for s in single]), rtol=1e-5, atol=1e-6)


def test_ranker_save_then_load_gives_identical_outputs(tiny_cascade: Cascade, test_batch, tmp_path: Path) -> None:
    pre = _preranked(tiny_cascade, test_batch)
    loaded = Ranker.load(tiny_cascade.ranker.save(tmp_path / "rank"))
    a, b = tiny_cascade.ranker(pre, test_batch[1]), loaded(pre, test_batch[1])
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.scores, b.scores)


def test_unknown_users_fall_back_to_the_population(tiny_cascade: Cascade, test_batch) -> None:
    pre = _preranked(tiny_cascade, test_batch)
    unknown = np.array([-1, 123_456] + [-1] * (len(pre) - 2))
    a = tiny_cascade.ranker(pre, unknown)
    b = tiny_cascade.ranker(pre, None)
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.scores, b.scores)
    known_col = tiny_cascade.ranker.features(pre, unknown)[..., -1]
    assert np.all(known_col == 0.0)


def test_ranking_depends_on_the_user(tiny_cascade: Cascade, test_batch, tiny_world) -> None:
    pre = _preranked(tiny_cascade, test_batch)
    busiest = tiny_world.queries_of("train")["user_id"].value_counts().index[:2].to_numpy()
    a = tiny_cascade.ranker(pre, np.full(len(pre), busiest[0]))
    b = tiny_cascade.ranker(pre, np.full(len(pre), busiest[1]))
    assert not np.array_equal(a.item_ids, b.item_ids)


def test_ranker_needs_preranked_candidates(tiny_cascade: Cascade, test_batch) -> None:
    recalled = tiny_cascade.recall(tiny_cascade.embed(test_batch[0]))
    with pytest.raises(ValueError, match="pre-ranker"):
        tiny_cascade.ranker(recalled, test_batch[1])
