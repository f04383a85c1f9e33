"""Drift reports (Evidently) on replays: no drift → no alert; preference drift → outcome drift only;
camera degradation → input drift; the summary is read from Evidently's own snapshot."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from monitoring.alerts import AlertStore
from monitoring.summary import DriftSummary

Report = tuple[DriftSummary, Path]


def _alerts(summary: DriftSummary) -> set[tuple[str, str]]:
    return {(a.rule, a.arm) for a in summary.alerts}


def test_a_replay_without_drift_raises_no_alert(report_no_drift: Report) -> None:
    summary, _ = report_no_drift
    assert all(arm.status == "tested" for arm in summary.arms.values())
    assert summary.alerts == []
    assert not summary.drift_detected


def test_identical_arms_without_drift_are_held(report_no_drift: Report) -> None:
    assert report_no_drift[0].recommendation.action == "hold"


def test_preference_drift_raises_outcome_drift_on_both_arms_and_no_input_drift(report_preference_drift: Report) -> None:
    alerts = _alerts(report_preference_drift[0])
    assert {("outcome_drift", "control"), ("outcome_drift", "canary")} <= alerts
    assert not any(rule == "input_drift" for rule, _ in alerts)


def test_camera_degradation_raises_input_drift_on_both_arms(report_camera_drift: Report) -> None:
    summary, _ = report_camera_drift
    assert {("input_drift", "control"), ("input_drift", "canary")} <= _alerts(summary)
    brightness = next(m for m in summary.arms["control"].metrics if m.name == "image_brightness")
    assert brightness.drifted and brightness.method == "ks" and brightness.score_kind == "p_value"


def test_drift_on_both_arms_does_not_block_the_comparison(report_preference_drift: Report) -> None:
    """Environment drift hits both arms alike, so it is no reason by itself to hold or roll back."""
    reasons = " ".join(report_preference_drift[0].recommendation.reasons)
    assert "canary-only" not in reasons


def test_metric_scores_and_flags_are_those_of_the_evidently_snapshot(report_camera_drift: Report) -> None:
    summary, out = report_camera_drift
    for arm in summary.arms.values():
        snapshot = json.loads((out / "run1" / f"evidently_{arm.arm}.json").read_text())
        values = {m["id"]: m["value"] for m in snapshot["metrics"]}
        statuses = {t["metric_config"]["metric_id"]: t["status"] for t in snapshot["tests"]}
        for m in arm.metrics:
            assert m.score == pytest.approx(values[m.evidently_metric_id])
            assert m.drifted == (statuses[m.evidently_metric_id] == "FAIL")
        for f in arm.families:
            assert f.drifted_share == pytest.approx(values[f.evidently_metric_id]["share"])


def test_the_run_writes_html_reports_summary_chart_and_alerts(report_camera_drift: Report) -> None:
    summary, out = report_camera_drift
    run = out / "run1"
    for name in ("index.html", "evidently_control.html", "evidently_canary.html", "ctr_cvr.svg", "summary.json"):
        assert (run / name).is_file(), name
    assert DriftSummary.from_json((run / "summary.json").read_text()) == summary
    assert json.loads((out / "latest.json").read_text())["run_id"] == "run1"
    stored = {a.id for a in AlertStore(str(out)).open_alerts()}
    assert stored == {a.id for a in summary.alerts}
    assert all(a.report and a.report.endswith(f"evidently_{a.arm}.html") for a in summary.alerts if a.kind == "drift")
    page = (run / "index.html").read_text()
    assert "Sample ratio (ok)" in page and "sequential test, intervals at 95%" in page and "CUPED" in page


def test_an_arm_that_returns_no_sids_skips_the_sid_test(replay_no_drift, tmp_path: Path) -> None:
    from monitoring.drift import prepare_windows
    from monitoring.rules import load_rules

    req = replay_no_drift.log.requests.assign(sid_prefix=-1)
    prepared = prepare_windows(req[req["window"] == 0], req[req["window"] == 1], load_rules().drift)
    assert [s.name for s in prepared.skipped] == ["sid_prefix"]
    assert "sid_prefix" not in prepared.reference.columns



@pytest.fixture(scope="module")
def report_thin_canary(replay_no_drift, tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftSummary, Path]:
    """The no-drift log with only 40 canary requests per window, reported with a published copy."""
    from monitoring.report import run_drift_report
    from monitoring.replay import ReplayLog

    log = replay_no_drift.log
    req = log.requests
    thin = pd.concat([req[req["arm"] == "control"], req[req["arm"] == "canary"].groupby("window").head(40)])
    root = tmp_path_factory.mktemp("thin_canary")
    ReplayLog(thin.sort_values("request_id").reset_index(drop=True), log.impressions, log.meta).save(root / "log")
    summary = run_drift_report(str(root / "log"), str(root / "log"), str(root / "artifact"), run_id="p1",
                               publish_uri=str(root / "pub"))
    return summary, root


def test_an_arm_with_too_few_requests_is_not_tested(report_thin_canary: tuple[DriftSummary, Path]) -> None:
    summary, _ = report_thin_canary
    canary = summary.arms["canary"]
    assert (canary.status, canary.n_reference, canary.n_current, canary.metrics) == ("insufficient_data", 40, 40, [])
    assert summary.arms["control"].status == "tested"


def test_a_published_report_links_to_the_published_copy(report_thin_canary: tuple[DriftSummary, Path]) -> None:
    summary, root = report_thin_canary
    for store in ("artifact", "pub"):
        assert (root / store / "p1" / "index.html").is_file() and (root / store / "latest.json").is_file()
    assert summary.artifacts.index_html == str(root / "pub" / "p1" / "index.html")
    assert summary.arms["control"].report_html == str(root / "pub" / "p1" / "evidently_control.html")
    assert summary.to_dict()["drift_detected"] is False
