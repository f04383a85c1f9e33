"""Canary vs control: a truly better canary is promoted, a truly worse one rolled back; drift on the canary alone
blocks a promotion, drift on both arms does not; a broken split blocks every decision and says why; CUPED uses the
control-only pre-period; `ab compare` and `drift report` decide the same on the same log."""
from __future__ import annotations

import json

import pandas as pd
from monitoring_scenarios import Replayed
from typer.testing import CliRunner

from monitoring.compare import compare_arms, expected_share_of, recommend, split_windows
from monitoring.replay import ReplayLog
from monitoring.rules import load_rules
from monitoring.summary import AlertRecord, ArmComparison, Cuped, MetricLift, SrmCheck
from onevision.cli import app


def compared(replayed: Replayed, **kw) -> ArmComparison:
    rules = load_rules()
    return compare_arms(replayed.log.requests, rules.comparison, expected_canary_share=expected_share_of(replayed.log.meta), **kw)


def test_a_truly_better_canary_is_promoted(replay_better_canary: Replayed) -> None:
    comparison = compared(replay_better_canary)
    ctr = comparison.metrics["ctr"]
    assert comparison.method == "sequential" and ctr.significant and ctr.rel_ci[0] > 0
    assert not comparison.srm.mismatch and comparison.srm.checked
    assert recommend(comparison, [], load_rules()).action == "promote"


def test_a_truly_worse_canary_is_rolled_back(replay_worse_canary: Replayed) -> None:
    comparison = compared(replay_worse_canary)
    assert comparison.metrics["ctr"].rel_ci[1] < 0
    assert recommend(comparison, [], load_rules()).action == "rollback"


def test_identical_arms_are_held(replay_no_drift: Replayed) -> None:
    assert recommend(compared(replay_no_drift), [], load_rules()).action == "hold"


def test_each_window_is_a_cumulative_look(replay_better_canary: Replayed) -> None:
    comparison = compared(replay_better_canary)
    assert comparison.windows == [0, 1] and comparison.pre_period_windows == []
    only_first = compared(replay_better_canary, windows=[0])
    assert only_first.metrics["ctr"].canary_n < comparison.metrics["ctr"].canary_n


def broken_split(log: ReplayLog) -> pd.DataFrame:
    """A logging bug: the canary's requests of 40% of its users never arrive."""
    requests = log.requests
    canary_users = sorted(requests.loc[requests["arm"] == "canary", "user_id"].unique())
    lost = set(canary_users[: int(0.4 * len(canary_users))])
    return requests[~((requests["arm"] == "canary") & requests["user_id"].isin(lost))]


def test_a_broken_split_blocks_promotion_and_says_which_split_was_expected(replay_better_canary: Replayed) -> None:
    rules = load_rules()
    comparison = compare_arms(broken_split(replay_better_canary.log), rules.comparison, expected_canary_share=0.5)
    assert comparison.srm.mismatch and comparison.metrics["ctr"].significant  # the lift alone would promote
    recommendation = recommend(comparison, [], rules)
    assert recommendation.action == "hold"
    assert "sample ratio mismatch: expected 50.0% of users on the canary" in recommendation.reasons[0]


def test_a_broken_split_blocks_rollback_too(replay_worse_canary: Replayed) -> None:
    rules = load_rules()
    comparison = compare_arms(broken_split(replay_worse_canary.log), rules.comparison, expected_canary_share=0.5)
    assert recommend(comparison, [], rules).action == "hold"


def test_ab_compare_on_a_broken_split_refuses_to_decide(replay_better_canary: Replayed, tmp_path) -> None:
    log = replay_better_canary.log
    ReplayLog(broken_split(log), log.impressions, log.meta).save(tmp_path / "broken")
    result = CliRunner().invoke(app, ["ab", "compare", str(tmp_path / "broken"), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "sample ratio: MISMATCH" in result.output and "recommendation: hold" in result.output
    decided = json.loads((tmp_path / "c.json").read_text())
    assert decided["comparison"]["srm"]["mismatch"] and decided["recommendation"]["action"] == "hold"


def test_without_an_expected_split_nothing_is_decided(replay_better_canary: Replayed) -> None:
    rules = load_rules()
    comparison = compare_arms(replay_better_canary.log.requests, rules.comparison)
    assert not comparison.srm.checked
    assert recommend(comparison, [], rules).action == "hold"


def test_users_served_by_both_arms_are_a_mismatch(replay_better_canary: Replayed) -> None:
    requests = replay_better_canary.log.requests.copy()
    requests.loc[requests.index[:40], "arm"] = "canary"  # the first 40 requests flip arm
    comparison = compare_arms(requests, load_rules().comparison, expected_canary_share=0.5)
    assert comparison.srm.mismatch and "served by both arms" in comparison.srm.reason


def test_cuped_uses_the_control_only_pre_period(replay_better_with_pre_period: Replayed) -> None:
    pre, looks = split_windows(replay_better_with_pre_period.log.requests)
    assert pre == [0] and looks == [1, 2]
    comparison = compared(replay_better_with_pre_period)
    ctr = comparison.metrics["ctr"]
    assert ctr.cuped.applied and ctr.cuped.covered_users > 0.5 and ctr.cuped.variance_reduction is not None
    assert {s.name for s in comparison.srm.segments} == {"user_history=returning", "user_history=new"}
    rules = load_rules()
    plain = compare_arms(replay_better_with_pre_period.log.requests, rules.comparison.model_copy(update={"cuped": False}),
                         expected_canary_share=0.5)
    assert not plain.metrics["ctr"].cuped.applied and plain.metrics["ctr"].cuped.reason == "disabled"


def test_ab_compare_and_the_drift_report_reach_the_same_decision(replay_worse_canary: Replayed, tmp_path) -> None:
    from monitoring.report import run_drift_report

    summary = run_drift_report(str(replay_worse_canary.log_uri), str(replay_worse_canary.log_uri), str(tmp_path / "r"),
                               run_id="same")
    result = CliRunner().invoke(app, ["ab", "compare", str(replay_worse_canary.log_uri), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    decided = json.loads((tmp_path / "c.json").read_text())
    assert decided["recommendation"]["action"] == summary.recommendation.action == "rollback"
    assert decided["comparison"]["windows"] == summary.comparison.windows
    assert decided["comparison"]["metrics"]["ctr"]["p_value"] == summary.comparison.metrics["ctr"].p_value


def _winning() -> ArmComparison:
    lift = dict(method="sequential", control_n=5000, canary_n=5000, control_users=900, canary_users=900,
                rel_ci=[0.05, 0.15], p_value=1e-4, fixed_p_value=1e-5, significant=True,
                cuped=Cuped(applied=False, beta=None, variance_reduction=None, covered_users=0.0, reason="no pre-period"))
    srm = SrmCheck(checked=True, expected_canary_share=0.5, control_units=900, canary_units=900, observed_canary_share=0.5,
                   chi_square_p_value=1.0, sequential_p_value=1.0, alpha=0.001, mismatch=False, windows=[], segments=[],
                   reason="split as configured")
    return ArmComparison(windows=[1], pre_period_windows=[], method="sequential", alpha=0.05, tau=0.05, srm=srm, metrics={
        "ctr": MetricLift(metric="ctr", control_rate=0.2, canary_rate=0.22, rel_lift=0.1, **lift),
        "cvr": MetricLift(metric="cvr", control_rate=0.1, canary_rate=0.11, rel_lift=0.1, **lift),
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
