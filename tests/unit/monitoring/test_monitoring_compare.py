"""Canary vs control: a truly better canary is promoted, a truly worse one rolled back; drift on the
canary alone blocks a promotion, drift on both arms does not."""
from __future__ import annotations

from monitoring_scenarios import Replayed

from monitoring.compare import compare_arms, recommend
from monitoring.rules import load_rules
from monitoring.summary import AlertRecord, ArmComparison, MetricLift


def test_a_truly_better_canary_is_promoted(replay_better_canary: Replayed) -> None:
    rules = load_rules()
    comparison = compare_arms(replay_better_canary.log.requests, rules.comparison)
    ctr = comparison.metrics["ctr"]
    assert ctr.significant and ctr.rel_ci[0] > 0
    assert recommend(comparison, [], rules).action == "promote"


def test_a_truly_worse_canary_is_rolled_back(replay_worse_canary: Replayed) -> None:
    rules = load_rules()
    comparison = compare_arms(replay_worse_canary.log.requests, rules.comparison)
    assert comparison.metrics["ctr"].rel_ci[1] < 0
    assert recommend(comparison, [], rules).action == "rollback"


def test_identical_arms_are_held(replay_no_drift: Replayed) -> None:
    rules = load_rules()
    assert recommend(compare_arms(replay_no_drift.log.requests, rules.comparison), [], rules).action == "hold"


def _winning() -> ArmComparison:
    lift = dict(control_n=5000, canary_n=5000, abs_ci=[0.01, 0.03], rel_ci=[0.05, 0.15], z=4.0, p_value=1e-4,
                significant=True)
    return ArmComparison(windows=[1], confidence=0.95, alpha=0.05, metrics={
        "ctr": MetricLift(metric="ctr", control_rate=0.2, canary_rate=0.22, abs_diff=0.02, rel_lift=0.1, **lift),
        "cvr": MetricLift(metric="cvr", control_rate=0.1, canary_rate=0.11, abs_diff=0.01, rel_lift=0.1, **lift),
    })


def _drift_alert(arm: str) -> AlertRecord:
    return AlertRecord(id=f"r-prediction-{arm}", run_id="r", created="t", status="open", rule="prediction_drift",
                       kind="drift", severity="critical", metric="prediction_drift_share", arm=arm, model=None,
                       window="w", value=1.0, threshold=0.5, message="m", report=None, summary=None)


def test_drift_on_the_canary_alone_blocks_a_promotion() -> None:
    recommendation = recommend(_winning(), [_drift_alert("canary")], load_rules())
    assert recommendation.action == "hold"
    assert "canary-only critical alert prediction_drift" in recommendation.reasons[0]


def test_drift_on_both_arms_does_not_block_a_promotion() -> None:
    assert recommend(_winning(), [_drift_alert("canary"), _drift_alert("control")], load_rules()).action == "promote"


def test_too_little_traffic_holds_a_winning_canary() -> None:
    small = _winning()
    small.metrics["ctr"] = small.metrics["ctr"].model_copy(update={"control_n": 50, "canary_n": 50})
    recommendation = recommend(small, [], load_rules())
    assert recommendation.action == "hold" and "not enough requests" in recommendation.reasons[0]
