"""`onevision ab replay|compare` and `onevision drift report|review` (the typer sub-apps)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from monitoring_scenarios import Replayed
from typer.testing import CliRunner

from monitoring.cli import ab_app, drift_app
from monitoring.summary import DriftSummary

runner = CliRunner()


def test_ab_replay_writes_the_log_and_the_chart(mon_world_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    result = runner.invoke(ab_app, ["replay", str(mon_world_dir), "--control", "popularity", "--canary", "random:5",
                                    "--out", str(out), "--canary-percent", "50", "--days", "2", "--queries-per-day", "30"])
    assert result.exit_code == 0, result.output
    assert {"requests.parquet", "impressions.parquet", "replay.json", "ctr_cvr.svg"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "replay.json").read_text())
    assert meta["config"]["days"] == [4, 5] and meta["arms"] == {"control": "popularity", "canary": "random:5"}


def test_ab_replay_names_a_missing_bundle(mon_world_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(ab_app, ["replay", str(mon_world_dir), "--control", "random", "--canary",
                                    str(tmp_path / "nope"), "--out", str(tmp_path / "ab")])
    assert result.exit_code == 1 and "bundle.json" in result.output


def test_ab_compare_recommends_rolling_back_a_worse_canary(replay_worse_canary: Replayed, tmp_path: Path) -> None:
    result = runner.invoke(ab_app, ["compare", str(replay_worse_canary.log_uri), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "recommendation: rollback" in result.output
    assert json.loads((tmp_path / "c.json").read_text())["recommendation"]["action"] == "rollback"


def test_drift_report_takes_the_cronjob_flags_and_fails_on_critical_alerts(
        replay_preference_drift: Replayed, tmp_path: Path) -> None:
    log = str(replay_preference_drift.log_uri)
    out = tmp_path / "reports"
    result = runner.invoke(drift_app, ["report", "--reference", log, "--current", log, "--out", str(out),
                                       "--run-id", "cli1", "--fail-on", "critical"])
    assert result.exit_code == 3, result.output
    assert "[critical] outcome_drift" in result.output
    summary = DriftSummary.from_json((out / "cli1" / "summary.json").read_text())
    assert summary.reference.windows == [0] and summary.current.windows == [1]


def test_drift_report_names_a_missing_log(tmp_path: Path) -> None:
    result = runner.invoke(drift_app, ["report", "--reference", str(tmp_path / "a"), "--current", str(tmp_path / "a"),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "requests.parquet" in result.output


@pytest.fixture
def report_store(report_preference_drift: tuple[DriftSummary, Path], tmp_path: Path) -> tuple[DriftSummary, Path]:
    summary, out = report_preference_drift
    return summary, Path(shutil.copytree(out, tmp_path / "store"))


def test_drift_review_lists_open_alerts_and_the_report(report_store: tuple[DriftSummary, Path]) -> None:
    summary, store = report_store
    result = runner.invoke(drift_app, ["review", "--store", str(store)])
    assert result.exit_code == 0, result.output
    for alert in summary.alerts:
        assert alert.id in result.output
    assert f"latest report (run1): {store / 'run1' / 'index.html'}" in result.output
    assert f"recommendation: {summary.recommendation.action}" in result.output
    assert "sample ratio: ok — split as configured: expected 50.0% of users" in result.output
    assert "(sequential)" in result.output and "ctr: CUPED not applied" in result.output


def test_drift_review_acknowledges_an_alert(report_store: tuple[DriftSummary, Path]) -> None:
    summary, store = report_store
    first = summary.alerts[0].id
    result = runner.invoke(drift_app, ["review", "--store", str(store), "--ack", first])
    assert result.exit_code == 0, result.output
    listed = result.output.split("open alerts in", 1)[1]
    assert first not in listed and summary.alerts[1].id in listed


def test_drift_review_open_opens_the_latest_report(report_store: tuple[DriftSummary, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, store = report_store
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = runner.invoke(drift_app, ["review", "--store", str(store), "--open"])
    assert result.exit_code == 0, result.output
    assert opened == [(store / "run1" / "index.html").resolve().as_uri()]


def test_ab_replays_literal_defaults_are_replay_configs() -> None:
    """`monitoring.cli` does not import the replay (numpy, pandas) for `onevision --help`, so the options that are
    ReplayConfig fields repeat its defaults as literals; they are checked against the one definition here."""
    import dataclasses
    import inspect

    from monitoring.cli import ab_replay
    from monitoring.replay import ReplayConfig

    options = {name: p.default for name, p in inspect.signature(ab_replay).parameters.items()}
    shared = [f for f in dataclasses.fields(ReplayConfig) if f.name in options and f.default is not dataclasses.MISSING]
    assert {f.name for f in shared} >= {"canary_percent", "window_hours", "seed", "batch_size"}
    for field in shared:
        assert options[field.name] == field.default, field.name
