from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from onevision.cascade import Cascade, CascadeConfig
from onevision.contracts import Retriever
from onevision.evaluation import EvalConfig, PopularityRetriever, RandomRetriever, evaluate
from onevision.vision.encoder import EncoderConfig, ImageEncoder
from onevision.world import World


def _metrics(retriever, world: World) -> dict[str, float]:
    return evaluate(retriever, world, EvalConfig(latency_samples=0), progress=False).metrics


@pytest.fixture(scope="module")
def tiny_metrics(tiny_cascade: Cascade, tiny_world: World) -> dict[str, dict[str, float]]:
    """Test-split metrics of the cascade, its recall order and the two floors on the tiny world."""
    return {
        "cascade": _metrics(tiny_cascade, tiny_world),
        "recall": _metrics(tiny_cascade.upto("recall"), tiny_world),
        "random": _metrics(RandomRetriever(tiny_world.items["item_id"].to_numpy(), seed=0), tiny_world),
        "popularity": _metrics(PopularityRetriever.fit(tiny_world), tiny_world),
    }


def test_cascade_is_a_retriever(tiny_cascade: Cascade) -> None:
    assert isinstance(tiny_cascade, Retriever) and tiny_cascade.name == "cascade"
    assert tiny_cascade.upto("recall").name == "cascade-recall"


def test_retrieve_ranks_distinct_catalogue_items(tiny_cascade: Cascade, test_batch, tiny_world: World) -> None:
    images, users = test_batch
    r = tiny_cascade.retrieve(images, users, 10)
    assert r.item_ids.shape == (len(images), 10) and r.scores.dtype == np.float32
    assert all(len(set(row)) == 10 for row in r.item_ids.tolist())
    assert np.isin(r.item_ids, tiny_world.items["item_id"]).all()
    assert (np.diff(r.scores, axis=1) <= 0).all()


def test_retrieve_continues_with_recall_order_then_pads(tiny_cascade: Cascade, test_batch) -> None:
    images, users = test_batch
    n_items = len(tiny_cascade.recall.item_ids)
    r = tiny_cascade.retrieve(images[:3], users[:3], n_items + 5)
    assert np.all(r.item_ids[:, n_items:] == -1) and np.all(np.isneginf(r.scores[:, n_items:]))
    assert all(len(set(row[:n_items])) == n_items for row in r.item_ids.tolist())
    assert (np.diff(r.scores[:, :n_items], axis=1) <= 0).all()


def test_batched_retrieve_equals_per_query_calls(tiny_cascade: Cascade, test_batch) -> None:
    images, users = test_batch[0][-8:], test_batch[1][-8:]
    batched = tiny_cascade.retrieve(images, users, 10)
    single = [tiny_cascade.retrieve(images[i : i + 1], users[i : i + 1], 10) for i in range(len(images))]
    assert np.array_equal(batched.item_ids, np.concatenate([s.item_ids for s in single]))
    np.testing.assert_allclose(batched.scores, np.concatenate([s.scores for s in single]), rtol=1e-4, atol=1e-5)


def test_save_then_load_gives_identical_outputs(tiny_cascade: Cascade, test_batch, tiny_encoder_dir: Path,
                                                tmp_path: Path) -> None:
    images, users = test_batch
    out = tiny_cascade.save(tmp_path / "cascade")
    assert {p.name for p in out.iterdir()} == {"recall", "prerank", "rank", "cascade.json"}
    loaded = Cascade.load(out, tiny_encoder_dir)
    a, b = tiny_cascade.retrieve(images, users, 10), loaded.retrieve(images, users, 10)
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.scores, b.scores)
    assert loaded.config == tiny_cascade.config


def test_load_refuses_another_encoder(tiny_cascade: Cascade, tmp_path: Path) -> None:
    tiny_cascade.save(tmp_path / "cascade")
    ImageEncoder(EncoderConfig(widths=(16, 32, 48, 64), embed_dim=64)).save(tmp_path / "other_encoder")
    with pytest.raises(ValueError, match="another encoder"):
        Cascade.load(tmp_path / "cascade", tmp_path / "other_encoder")


def test_unknown_and_missing_users_rank_like_the_population(tiny_cascade: Cascade, test_batch) -> None:
    images, _ = test_batch
    a = tiny_cascade.retrieve(images, np.full(len(images), -1), 10)
    b = tiny_cascade.retrieve(images, None, 10)
    assert np.array_equal(a.item_ids, b.item_ids)


def test_stage_latencies_are_recorded(tiny_cascade: Cascade, test_batch) -> None:
    images, users = test_batch
    tiny_cascade.retrieve(images, users, 10)
    t = tiny_cascade.last_timings
    assert t is not None and min(t.encode_ms, t.recall_ms, t.prerank_ms, t.rank_ms) > 0
    p = tiny_cascade.profile(images[:2], users[:2], 10, repeats=1, batch_size=1)
    assert p.total_ms == pytest.approx(p.encode_ms + p.recall_ms + p.prerank_ms + p.rank_ms) and p.rank_ms > 0


# Tiny world (64 items, 80 test queries, a 4-epoch encoder), measured with TINY_CASCADE: recall@10
# cascade 0.51, recall order 0.41, popularity 0.34, random 0.19; ctr_proxy@10 cascade 0.078, recall order
# 0.051, popularity 0.055. The default world gives far wider margins (recall@10 0.78 vs 0.07 popularity).
def test_cascade_beats_the_floors_on_recall(tiny_metrics) -> None:
    m = {name: v["recall@10"] for name, v in tiny_metrics.items()}
    assert m["cascade"] >= m["random"] + 0.25
    assert m["cascade"] >= m["popularity"] + 0.1


def test_personalised_ranker_raises_ctr_over_recall_order(tiny_metrics) -> None:
    ctr = {name: v["ctr_proxy@10"] for name, v in tiny_metrics.items()}
    assert ctr["cascade"] >= 1.3 * ctr["recall"]
    assert ctr["cascade"] >= 1.3 * ctr["popularity"]


def test_training_needs_no_oracle_and_is_deterministic(tiny_cascade: Cascade, tiny_cascade_config: CascadeConfig,
                                                       tiny_world_dir: Path, tiny_encoder_dir: Path, test_batch,
                                                       tmp_path: Path) -> None:
    shutil.copytree(tiny_world_dir, tmp_path / "world", ignore=shutil.ignore_patterns("truth"))
    again = Cascade.fit(tmp_path / "world", tiny_encoder_dir, tiny_cascade_config)
    images, users = test_batch
    a, b = tiny_cascade.retrieve(images, users, 10), again.retrieve(images, users, 10)
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.scores, b.scores)


def test_config_round_trips_through_json() -> None:
    cfg = CascadeConfig(recall_n=33, rank_hidden=(8,), index="hnsw", seed=5)
    assert CascadeConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown cascade config keys"):
        CascadeConfig.from_json({"recall": 3})


def test_retrieve_runs_its_stages_on_one_blas_thread(tiny_cascade: Cascade, test_batch, openblas_threads) -> None:
    """A second BLAS thread spins on the cores torch's threads need next (a batch of 8 took 4x as long)."""
    from threadpoolctl import threadpool_limits

    seen = openblas_threads.spy(tiny_cascade, "prerank")
    images, users = test_batch
    with threadpool_limits(limits=2, user_api="blas"):
        before = openblas_threads.now()
        tiny_cascade.retrieve(images[:4], users[:4], 10)
        assert openblas_threads.now() == before
    assert seen and all(n == 1 for n in seen[0])
