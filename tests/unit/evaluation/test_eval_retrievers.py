from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onevision.contracts import Ranking, Retriever
from onevision.evaluation import PopularityRetriever, RandomRetriever
from onevision.world import load_world

IMAGES = np.zeros((3, 8, 8, 3), dtype=np.uint8)


def test_ranking_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        Ranking(np.zeros((2, 3)), np.zeros((2, 4)))


def test_baselines_satisfy_the_retriever_protocol() -> None:
    assert isinstance(RandomRetriever(np.arange(5), seed=0), Retriever)
    assert isinstance(PopularityRetriever(np.arange(3), np.zeros(3)), Retriever)


def test_random_ranks_distinct_catalogue_items() -> None:
    catalogue = np.arange(100, 120)
    r = RandomRetriever(catalogue, seed=1).retrieve(IMAGES, None, 10)
    assert r.item_ids.shape == (3, 10) and r.scores.dtype == np.float32
    assert all(len(set(row)) == 10 for row in r.item_ids.tolist())
    assert np.isin(r.item_ids, catalogue).all()
    assert (np.diff(r.scores, axis=1) <= 0).all()


def test_random_is_reproducible_by_seed() -> None:
    a = RandomRetriever(np.arange(50), seed=3).retrieve(IMAGES, None, 5).item_ids
    b = RandomRetriever(np.arange(50), seed=3).retrieve(IMAGES, None, 5).item_ids
    c = RandomRetriever(np.arange(50), seed=4).retrieve(IMAGES, None, 5).item_ids
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_random_pads_beyond_the_catalogue() -> None:
    r = RandomRetriever(np.arange(4), seed=0).retrieve(IMAGES, None, 6)
    assert (r.item_ids[:, 4:] == -1).all()
    assert all(sorted(row[:4]) == [0, 1, 2, 3] for row in r.item_ids.tolist())


def test_popularity_orders_by_clicks_then_item_id() -> None:
    # clicks: item 3 x3, item 4 x2, item 2 x1, item 1 and 5 x0 -> [3, 4, 2, 1, 5]
    pop = PopularityRetriever.from_clicks(np.array([5, 1, 2, 3, 4]), np.array([3, 3, 2, 4, 4, 3]))
    assert pop.ranked_item_ids.tolist() == [3, 4, 2, 1, 5]
    assert pop.scores.tolist() == [3, 2, 1, 0, 0]


def test_popularity_gives_everyone_the_same_padded_list() -> None:
    pop = PopularityRetriever(np.array([7, 8]), np.array([2.0, 1.0]))
    r = pop.retrieve(IMAGES, np.array([0, 1, 2]), 3)
    assert r.item_ids.tolist() == [[7, 8, -1]] * 3


def test_popularity_fit_counts_train_clicks_only(tiny_world_dir: Path) -> None:
    world = load_world(tiny_world_dir)
    pop = PopularityRetriever.fit(world)
    imp = world.impressions
    train = imp["query_id"].isin(world.queries_of("train")["query_id"])
    assert pop.scores.sum() == imp.loc[train, "clicked"].sum()
    assert pop.scores.sum() < imp["clicked"].sum()
    assert sorted(pop.ranked_item_ids.tolist()) == sorted(world.items["item_id"].tolist())
