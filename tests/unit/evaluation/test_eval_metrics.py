from __future__ import annotations

import math

import numpy as np
import pytest

from onevision.evaluation import metrics as M
from onevision.world.behaviour import ListProbabilities

# Four queries, K = 4. Target positions (0-based): q0 -> 1, q1 -> 3, q2 -> miss, q3 -> 0 (listed twice).
RANKED = np.array(
    [
        [5, 3, 9, -1],
        [7, 8, 2, 4],
        [1, -1, -1, -1],
        [6, 6, 2, 0],
    ]
)
TARGETS = np.array([3, 4, 6, 6])


def test_recall_counts_target_in_top_k() -> None:
    assert M.recall_at_k(RANKED, TARGETS, 1) == pytest.approx(1 / 4)  # only q3
    assert M.recall_at_k(RANKED, TARGETS, 2) == pytest.approx(2 / 4)  # q0, q3
    assert M.recall_at_k(RANKED, TARGETS, 4) == pytest.approx(3 / 4)  # q0, q1, q3


def test_ndcg_is_inverse_log_discount_of_the_hit() -> None:
    # q0: 1/log2(1+2) = 0.630930; q1: 1/log2(3+2) = 0.430677; q2: 0; q3: 1/log2(0+2) = 1
    assert M.ndcg_at_k(RANKED, TARGETS, 4) == pytest.approx((0.6309298 + 0.4306766 + 0 + 1) / 4, abs=1e-6)
    assert M.ndcg_at_k(RANKED, TARGETS, 2) == pytest.approx((0.6309298 + 1) / 4, abs=1e-6)


def test_mrr_is_inverse_rank_of_the_hit() -> None:
    assert M.mrr_at_k(RANKED, TARGETS, 4) == pytest.approx((1 / 2 + 1 / 4 + 0 + 1) / 4)  # 0.4375
    assert M.mrr_at_k(RANKED, TARGETS, 2) == pytest.approx((1 / 2 + 0 + 0 + 1) / 4)  # 0.375


def test_padding_never_matches_and_short_lists_are_padded() -> None:
    assert M.recall_at_k(np.array([[-1, -1]]), np.array([-1]), 2) == 0.0
    # k beyond the list width behaves as if the missing slots were empty
    assert M.recall_at_k(RANKED, TARGETS, 10) == M.recall_at_k(RANKED, TARGETS, 4)


def test_hitrate_excludes_queries_without_order() -> None:
    ordered = np.array([[3, -1], [-1, -1], [9, 2], [0, -1]])  # q1 had no order
    # k=2: q0 hit (3), q2 miss ([1, -1]), q3 miss ([6, 6]) -> 1/3
    assert M.hitrate_at_k(RANKED, ordered, 2) == pytest.approx(1 / 3)
    # k=4: q3 now hits (0 at position 3) -> 2/3; q1 would be a hit for any item but is excluded
    assert M.hitrate_at_k(RANKED, ordered, 4) == pytest.approx(2 / 3)


def test_hitrate_is_nan_when_no_query_has_an_order() -> None:
    assert math.isnan(M.hitrate_at_k(RANKED, np.full((4, 1), -1), 4))


def test_shape_mismatch_names_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"targets of shape \(4,\)"):
        M.recall_at_k(RANKED, np.array([1, 2]), 2)


# Two queries, K = 3; the third slot of q0 is empty, so its (bogus) probabilities must be ignored.
PROXY_RANKED = np.array([[10, 11, -1], [12, 13, 14]])
PROBS = ListProbabilities(
    click=np.array([[0.2, 0.1, 0.9], [0.3, 0.0, 0.1]]),
    order=np.array([[0.05, 0.02, 0.5], [0.1, 0.0, 0.01]]),
)


def test_ctr_proxy_is_expected_clicks_per_shown_slot() -> None:
    # k=3: (0.2 + 0.1 + 0.3 + 0.0 + 0.1) / 5 shown slots = 0.14
    assert M.ctr_proxy(PROBS, PROXY_RANKED, 3) == pytest.approx(0.14)
    # k=2: (0.2 + 0.1 + 0.3 + 0.0) / 4 = 0.15
    assert M.ctr_proxy(PROBS, PROXY_RANKED, 2) == pytest.approx(0.15)


def test_orders_proxy_is_expected_orders_per_query() -> None:
    # k=3: (0.05 + 0.02 + 0.1 + 0.0 + 0.01) / 2 queries = 0.09
    assert M.orders_proxy(PROBS, PROXY_RANKED, 3) == pytest.approx(0.09)


def test_cvr_proxy_is_total_orders_over_total_clicks() -> None:
    # k=3: 0.18 / 0.7; k=2: 0.17 / 0.6
    assert M.cvr_proxy(PROBS, PROXY_RANKED, 3) == pytest.approx(0.18 / 0.7)
    assert M.cvr_proxy(PROBS, PROXY_RANKED, 2) == pytest.approx(0.17 / 0.6)


def test_proxies_of_an_empty_list_are_undefined() -> None:
    empty = np.full((1, 2), -1)
    zeros = ListProbabilities(click=np.zeros((1, 2)), order=np.zeros((1, 2)))
    assert math.isnan(M.ctr_proxy(zeros, empty, 2)) and math.isnan(M.cvr_proxy(zeros, empty, 2))
    assert M.orders_proxy(zeros, empty, 2) == 0.0
