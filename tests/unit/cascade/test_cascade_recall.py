from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onevision.cascade import AnnRecall, Cascade, RecallConfig


def _queries(cascade: Cascade, batch) -> np.ndarray:
    return cascade.embed(batch[0])


def test_recall_returns_the_top_n_items_by_inner_product(tiny_cascade: Cascade, test_batch) -> None:
    q = _queries(tiny_cascade, test_batch)
    items = tiny_cascade.ranker.items
    got = tiny_cascade.recall(q, 10)
    brute = q @ items.emb.T
    expected = items.item_ids[np.argsort(-brute, axis=1, kind="stable")[:, :10]]
    assert got.item_ids.shape == (len(q), 10)
    np.testing.assert_allclose(got.sim, np.sort(brute, axis=1)[:, ::-1][:, :10], atol=1e-5)
    assert (got.item_ids == expected).mean() > 0.98  # float ties aside


def test_recall_caps_n_at_the_catalogue(tiny_cascade: Cascade, test_batch) -> None:
    n_items = len(tiny_cascade.recall.item_ids)
    got = tiny_cascade.recall(_queries(tiny_cascade, test_batch), 10 * n_items)
    assert got.item_ids.shape[1] == n_items
    assert all(len(set(row)) == n_items for row in got.item_ids.tolist())


def test_batched_recall_equals_per_query_calls(tiny_cascade: Cascade, test_batch) -> None:
    q = _queries(tiny_cascade, test_batch)
    batched = tiny_cascade.recall(q)
    single = [tiny_cascade.recall(q[i : i + 1]) for i in range(len(q))]
    assert np.array_equal(batched.item_ids, np.concatenate([s.item_ids for s in single]))
    np.testing.assert_allclose(batched.sim, np.concatenate([s.sim for s in single]), atol=1e-5)


def test_recall_save_then_load_gives_identical_outputs(tiny_cascade: Cascade, test_batch, tmp_path: Path) -> None:
    q = _queries(tiny_cascade, test_batch)
    loaded = AnnRecall.load(tiny_cascade.recall.save(tmp_path / "recall"))
    a, b = tiny_cascade.recall(q), loaded(q)
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.sim, b.sim)


def test_hnsw_index_finds_the_flat_neighbours_on_a_small_catalogue(tiny_cascade: Cascade, test_batch) -> None:
    items = tiny_cascade.ranker.items
    q = _queries(tiny_cascade, test_batch)
    hnsw = AnnRecall.fit(items.item_ids, items.emb, RecallConfig(n=10, index="hnsw"))
    flat = AnnRecall.fit(items.item_ids, items.emb, RecallConfig(n=10, index="flat"))
    assert (hnsw(q).item_ids == flat(q).item_ids).mean() > 0.95


def test_auto_index_is_exact_up_to_the_threshold_and_a_graph_above(tiny_cascade: Cascade, tmp_path: Path) -> None:
    items = tiny_cascade.ranker.items
    n = len(items.item_ids)
    small = AnnRecall.fit(items.item_ids, items.emb, RecallConfig(n=10, flat_max_items=n))
    large = AnnRecall.fit(items.item_ids, items.emb, RecallConfig(n=10, flat_max_items=n - 1))
    assert (small.kind, large.kind) == ("flat", "hnsw")
    loaded = AnnRecall.load(large.save(tmp_path / "recall"))
    assert loaded.kind == "hnsw" and loaded.index.hnsw.efSearch == large.config.hnsw_ef_search


def test_recall_config_names_the_bad_index_kind() -> None:
    with pytest.raises(ValueError, match="index auto|flat|hnsw"):
        RecallConfig(index="ivf")


def test_recall_rejects_embeddings_of_another_width(tiny_cascade: Cascade) -> None:
    with pytest.raises(ValueError, match="query embeddings of shape"):
        tiny_cascade.recall(np.zeros((2, tiny_cascade.recall.dim + 1), np.float32))
