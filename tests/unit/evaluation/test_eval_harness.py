from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onevision.contracts import Ranking
from onevision.evaluation import (
    EvalConfig,
    EvaluationResult,
    PopularityRetriever,
    RandomRetriever,
    compare_table,
    evaluate,
    load_result,
)
from onevision.evaluation.harness import ordered_items
from onevision.world import World, load_world
from onevision.world.render import decode_image

STABLE_KEYS = [
    "model", "n_queries", "recall@1", "recall@10", "recall@50", "ndcg@1", "ndcg@10", "ndcg@50", "mrr@1", "mrr@10",
    "mrr@50", "hitrate@1", "hitrate@10", "hitrate@50", "ctr_proxy@10", "cvr_proxy@10", "orders_proxy@10",
    "ctr_proxy_without_users@10", "personalisation_lift@10", "slate_preference@10", "latency_ms_p50", "latency_ms_p95",
]


class OracleRetriever:
    """Knows which product every query photo shows; ranks it first and leaves the rest empty."""

    name = "oracle"

    def __init__(self, world: World):
        q = world.queries
        self.target_of = {decode_image(b).tobytes(): t for b, t in zip(q["image"], q["target_item_id"])}

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        items = np.full((len(images), k), -1, dtype=np.int64)
        items[:, 0] = [self.target_of[img.tobytes()] for img in images]
        return Ranking(items, np.where(items >= 0, 1.0, -np.inf))


class RecordingRetriever:
    """Ranks nothing; records what the harness passed in."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[int, np.ndarray | None, int]] = []

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3
        self.calls.append((len(images), user_ids, k))
        return Ranking(np.full((len(images), k), -1), np.zeros((len(images), k)))


@pytest.fixture(scope="module")
def world(tiny_world_dir: Path) -> World:
    return load_world(tiny_world_dir)


@pytest.fixture(scope="module")
def oracle_result(world: World) -> EvaluationResult:
    return evaluate(OracleRetriever(world), world, progress=False)


@pytest.fixture(scope="module")
def random_result(world: World) -> EvaluationResult:
    return evaluate(RandomRetriever(world.items["item_id"].to_numpy(), seed=0), world, progress=False)


def test_oracle_is_perfect(oracle_result: EvaluationResult, world: World) -> None:
    assert oracle_result.n_queries == len(world.queries_of("test"))
    for key in ("recall@1", "recall@50", "ndcg@10", "mrr@10"):
        assert oracle_result[key] == 1.0


def test_random_is_far_below_the_oracle(oracle_result: EvaluationResult, random_result: EvaluationResult) -> None:
    assert random_result["recall@1"] < 0.2
    assert random_result["ndcg@10"] < 0.5 * oracle_result["ndcg@10"]
    assert random_result["ctr_proxy@10"] < 0.5 * oracle_result["ctr_proxy@10"]


def test_metrics_json_has_exactly_the_stable_keys(random_result: EvaluationResult, tmp_path: Path) -> None:
    path = random_result.save(tmp_path / "eval" / "random")
    data = json.loads(path.read_text())
    assert path.name == "metrics.json" and list(data) == STABLE_KEYS
    assert all(v is None or round(v, 6) == v for k, v in data.items() if k != "model")


def test_metrics_json_round_trips(random_result: EvaluationResult, tmp_path: Path) -> None:
    loaded = load_result(random_result.save(tmp_path))
    assert loaded.to_json() == random_result.to_json()


def test_results_do_not_depend_on_batch_size(world: World, oracle_result: EvaluationResult) -> None:
    other = evaluate(OracleRetriever(world), world, EvalConfig(batch_size=7, latency_samples=0), progress=False)
    drop = ("latency_ms_p50", "latency_ms_p95")
    # to_json: undefined metrics (NaN, e.g. the slate preference of lists with one item) become None
    assert {k: v for k, v in other.to_json().items() if k not in drop} == {
        k: v for k, v in oracle_result.to_json().items() if k not in drop
    }


def test_batches_cover_every_query_then_batch1_latency_sample(world: World) -> None:
    rec = RecordingRetriever()
    result = evaluate(rec, world, EvalConfig(batch_size=32, max_queries=70, latency_samples=5), progress=False)
    # all queries with users, all again without (the personalisation lift), then the batch-1 latency sample
    assert [c[0] for c in rec.calls] == [32, 32, 6, 32, 32, 6, 1, 1, 1, 1, 1]
    assert [c[1] is None for c in rec.calls[:6]] == [False] * 3 + [True] * 3
    assert all(c[2] == 50 for c in rec.calls)
    assert result.n_queries == 70 and result.latency_source == "batch-1 sample of 5 queries"


def test_personalized_passes_the_query_users(world: World) -> None:
    rec = RecordingRetriever()
    evaluate(rec, world, EvalConfig(max_queries=4, latency_samples=0), progress=False)
    assert rec.calls[0][1].tolist() == world.queries_of("test")["user_id"].iloc[:4].tolist()


def test_non_personalized_passes_no_users(world: World) -> None:
    rec = RecordingRetriever()
    evaluate(rec, world, EvalConfig(max_queries=4, latency_samples=2, personalized=False), progress=False)
    assert [c[1] for c in rec.calls] == [None, None, None]


def test_wrong_ranking_shape_names_the_retriever(world: World) -> None:
    class Short(RecordingRetriever):
        name = "short"

        def retrieve(self, images, user_ids, k):
            return Ranking(np.zeros((len(images), k - 1)), np.zeros((len(images), k - 1)))

    with pytest.raises(ValueError, match=r"'short' returned item_ids of shape \(4, 49\); expected \(4, 50\)"):
        evaluate(Short(), world, EvalConfig(max_queries=4), progress=False)


def test_unknown_split_is_named(world: World) -> None:
    with pytest.raises(ValueError, match="split 'tset' has no queries"):
        evaluate(RecordingRetriever(), world, EvalConfig(split="tset"), progress=False)


def test_compare_table_has_a_column_per_model(world: World, random_result: EvaluationResult) -> None:
    pop = evaluate(PopularityRetriever.fit(world), world, EvalConfig(latency_samples=0), progress=False)
    lines = compare_table([random_result, pop]).splitlines()
    assert lines[0] == "| metric | random | popularity |"
    assert f"| recall@10 | {random_result['recall@10']:.4f} | {pop['recall@10']:.4f} |" in lines
    assert len(lines) == 3 + len(STABLE_KEYS) - 2


def test_ordered_items_are_gathered_per_query_in_query_order() -> None:
    imp = pd.DataFrame({
        "query_id": [1, 1, 1, 2, 2, 3], "position": [0, 1, 2, 0, 1, 0],
        "item_id": [10, 11, 12, 20, 21, 30], "clicked": [True, True, True, True, False, False],
        "ordered": [True, False, True, False, False, False],
    })
    assert ordered_items(imp, np.array([3, 1, 2])).tolist() == [[-1, -1], [10, 12], [-1, -1]]
