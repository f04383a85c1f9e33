"""The refresh gate: new items within 10% of old ones after the refresh, old ones unchanged (±1 pt)."""
from __future__ import annotations

from onevision.catalogue.evaluate import ListingRecall
from onevision.catalogue.gate import RefreshGate


def _recall(old: float, new: float, n_new: int = 50) -> ListingRecall:
    return ListingRecall(k=10, listed_by=11, old=old, new=new, n_old=500, n_new=n_new)


def test_new_items_close_to_old_ones_and_old_ones_unchanged_pass() -> None:
    assert RefreshGate().check(_recall(0.60, 0.0), _recall(0.605, 0.55)).passed


def test_new_items_more_than_10_percent_below_old_ones_fail() -> None:
    report = RefreshGate().check(_recall(0.60, 0.0), _recall(0.60, 0.53))
    assert not report.passed and "new items' recall@10 0.530" in report.reasons[0]


def test_old_items_moving_more_than_one_point_fail() -> None:
    report = RefreshGate().check(_recall(0.60, 0.0), _recall(0.585, 0.60))
    assert not report.passed and "old items' recall@10 moved from 0.600 to 0.585" in report.reasons[0]


def test_no_queries_for_new_items_fail() -> None:
    report = RefreshGate().check(_recall(0.60, 0.0), _recall(0.60, float("nan"), n_new=0))
    assert not report.passed and "no queries for new items" in report.reasons[0]


def test_listing_recall_round_trips_through_json(tmp_path) -> None:
    recall = ListingRecall(10, 11, 0.6, 0.5, 500, 50, {0: (0.4, 20), 1: (0.6, 30)})
    recall.save(tmp_path)
    assert ListingRecall.load(tmp_path) == recall
