"""summary.json keeps a stable, versioned schema (checked in as monitoring/summary.schema.json)."""
from __future__ import annotations

import json
from pathlib import Path

from monitoring.summary import SCHEMA_PATH, SCHEMA_VERSION, DriftSummary, json_schema

TOP_LEVEL = {"schema_version", "run_id", "created", "evidently_version", "reference", "current", "arms",
             "comparison", "recommendation", "alerts", "artifacts"}


def test_the_model_schema_equals_the_checked_in_schema() -> None:
    assert json_schema() == json.loads(SCHEMA_PATH.read_text())


def test_a_written_summary_has_the_documented_fields(report_preference_drift: tuple[DriftSummary, Path]) -> None:
    _, out = report_preference_drift
    data = json.loads((out / "run1" / "summary.json").read_text())
    assert set(data) == TOP_LEVEL and data["schema_version"] == SCHEMA_VERSION
    metric = data["arms"]["control"]["metrics"][0]
    assert set(metric) == {"name", "family", "column", "method", "score_kind", "score", "threshold", "drifted",
                           "status", "evidently_metric_id"}
    alert = data["alerts"][0]
    assert {"severity", "metric", "arm", "window", "value", "threshold", "report"} <= set(alert)
    assert set(data["comparison"]["metrics"]) == {"ctr", "cvr"}
