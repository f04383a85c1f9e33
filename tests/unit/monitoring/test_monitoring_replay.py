"""A/B replay: later days simulated by the world, sticky split, oracle clicks, the Parquet log."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from monitoring_scenarios import QUERIES_PER_DAY, REPLAY_DAYS, Replayed
from monitoring_toys import pixel_arm, random_arm

from monitoring.arms import ArmError, RetrieverArm
from monitoring.replay import IMPRESSION_COLUMNS, REQUEST_COLUMNS, ReplayLog, replay_ab
from monitoring.split import canary_mask
from onevision.contracts import Ranking
from onevision.world import DriftConfig


def test_the_log_has_the_documented_columns(replay_no_drift: Replayed) -> None:
    log = replay_no_drift.log
    assert tuple(log.requests.columns) == REQUEST_COLUMNS
    assert tuple(log.impressions.columns) == IMPRESSION_COLUMNS
    assert len(log.requests) == QUERIES_PER_DAY * len(REPLAY_DAYS)


def test_impressions_add_up_to_the_request_outcomes(replay_no_drift: Replayed) -> None:
    req, imp = replay_no_drift.log.requests, replay_no_drift.log.impressions
    per_request = imp.groupby("request_id")[["clicked", "ordered"]].sum()
    joined = req.set_index("request_id")[["clicks", "orders", "n_results"]].join(per_request)
    assert (joined["clicks"] == joined["clicked"]).all() and (joined["orders"] == joined["ordered"]).all()
    assert len(imp) == req["n_results"].sum()
    assert not (imp["ordered"] & ~imp["clicked"]).any()


def test_users_stay_in_one_arm_split_by_their_hash(replay_no_drift: Replayed) -> None:
    req = replay_no_drift.log.requests
    assert (req.groupby("user_id")["arm"].nunique() == 1).all()
    expected = np.where(canary_mask(req["user_id"].to_numpy(), 50), "canary", "control")
    assert (req["arm"].to_numpy() == expected).all()


def test_windows_follow_the_days(replay_no_drift: Replayed) -> None:
    req = replay_no_drift.log.requests
    assert (req["window"] == req["day"] - REPLAY_DAYS[0]).all()


def test_the_same_seed_replays_the_same_log(mon_world_dir: Path, replay_no_drift: Replayed) -> None:
    again = replay_ab(mon_world_dir, pixel_arm(mon_world_dir, name="pixel-a"), pixel_arm(mon_world_dir, name="pixel-b"),
                      canary_percent=50, days=REPLAY_DAYS, seed=3, queries_per_day=QUERIES_PER_DAY)
    cols = [c for c in REQUEST_COLUMNS if c != "latency_ms"]
    pd.testing.assert_frame_equal(again.requests[cols], replay_no_drift.log.requests[cols])


def test_camera_degradation_darkens_the_drifted_day(replay_camera_drift: Replayed, replay_no_drift: Replayed) -> None:
    def brightness(log: ReplayLog, day: int) -> float:
        return float(log.requests.loc[log.requests["day"] == day, "img_brightness"].mean())

    assert brightness(replay_camera_drift.log, 4) == pytest.approx(brightness(replay_no_drift.log, 4))
    assert brightness(replay_camera_drift.log, 5) < brightness(replay_no_drift.log, 5) - 0.02


def test_a_better_arm_gets_more_clicks_and_orders(replay_better_canary: Replayed) -> None:
    rates = replay_better_canary.log.requests.groupby("arm")[["clicked", "ordered", "expected_ctr"]].mean()
    assert (rates.loc["canary"] > rates.loc["control"]).all()


def test_the_log_round_trips_through_the_store(replay_no_drift: Replayed) -> None:
    loaded = ReplayLog.load(replay_no_drift.log_uri)
    pd.testing.assert_frame_equal(loaded.requests, replay_no_drift.log.requests)
    assert loaded.meta["arms"] == {"control": "pixel-a", "canary": "pixel-b"}


def test_before_the_canary_start_day_everyone_gets_the_control(mon_world_dir: Path) -> None:
    log = replay_ab(mon_world_dir, random_arm(mon_world_dir), random_arm(mon_world_dir, seed=1), canary_percent=50,
                    days=(4, 5), queries_per_day=20, canary_start_day=5)
    arms_by_day = log.requests.groupby("day")["arm"].unique()
    assert list(arms_by_day[4]) == ["control"] and set(arms_by_day[5]) == {"control", "canary"}


class _Unknown:
    name = "unknown-items"

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        return Ranking(np.full((len(images), k), 10_000), np.zeros((len(images), k)))


def test_an_arm_returning_items_outside_the_catalogue_is_named(mon_world_dir: Path) -> None:
    with pytest.raises(ArmError, match="not in the world's catalogue: \\[10000\\]"):
        replay_ab(mon_world_dir, random_arm(mon_world_dir), RetrieverArm(_Unknown()), canary_percent=50, days=(4,),
                  queries_per_day=20, drift=DriftConfig())
