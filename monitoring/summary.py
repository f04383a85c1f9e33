"""The drift-report summary (summary.json): a stable, versioned schema. Its JSON Schema is checked in as
monitoring/summary.schema.json; a change of fields must bump SCHEMA_VERSION and regenerate that file
(`python -m monitoring.summary > monitoring/summary.schema.json`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("summary.schema.json")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricDrift(_Model):
    """One Evidently ValueDrift result (value and test status copied from the snapshot)."""

    name: str
    family: Literal["outcome", "input", "prediction"]
    column: str
    method: str
    score_kind: Literal["p_value", "distance"]
    score: float | None
    threshold: float
    drifted: bool  # Evidently's test status is FAIL
    status: str  # Evidently's test status: SUCCESS, FAIL, WARNING, ERROR
    evidently_metric_id: str


class FamilyDrift(_Model):
    """One Evidently DriftedColumnsCount over a family's columns; drifted when its share test fails."""

    family: Literal["outcome", "input", "prediction"]
    columns: list[str]
    drifted_count: float
    drifted_share: float
    drift_share_threshold: float
    drifted: bool
    status: str
    evidently_metric_id: str


class SkippedTest(_Model):
    name: str
    reason: str


class ArmDrift(_Model):
    arm: Literal["control", "canary"]
    model: str | None
    status: Literal["tested", "insufficient_data"]
    n_reference: int
    n_current: int
    metrics: list[MetricDrift]
    families: list[FamilyDrift]
    skipped: list[SkippedTest]
    report_html: str | None  # URI of Evidently's HTML report for this arm
    snapshot_json: str | None  # URI of Evidently's snapshot (Snapshot.json())


class MetricLift(_Model):
    metric: Literal["ctr", "cvr"]
    control_rate: float
    canary_rate: float
    control_n: int
    canary_n: int
    abs_diff: float
    abs_ci: list[float]
    rel_lift: float | None
    rel_ci: list[float | None]
    z: float
    p_value: float
    significant: bool


class ArmComparison(_Model):
    windows: list[int]
    confidence: float
    alpha: float
    metrics: dict[str, MetricLift]  # "ctr", "cvr"


class Recommendation(_Model):
    action: Literal["promote", "hold", "rollback"]
    reasons: list[str]


class AlertRecord(_Model):
    id: str
    run_id: str
    created: str
    status: Literal["open", "acknowledged"]
    rule: str
    kind: Literal["drift", "lift"]
    severity: Literal["info", "warning", "critical"]
    metric: str
    arm: Literal["control", "canary"]
    model: str | None
    window: str  # "reference [0] -> current [1]"
    value: float | None
    threshold: float
    message: str
    report: str | None  # URI of the HTML report to look at
    summary: str | None  # URI of summary.json


class LogWindow(_Model):
    uri: str
    windows: list[int]
    n_requests: int


class Artifacts(_Model):
    index_html: str
    summary_json: str
    chart_svg: str


class DriftSummary(_Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    created: str
    evidently_version: str
    reference: LogWindow
    current: LogWindow
    arms: dict[str, ArmDrift]
    comparison: ArmComparison | None
    recommendation: Recommendation
    alerts: list[AlertRecord]
    artifacts: Artifacts

    @property
    def drift_detected(self) -> bool:
        """Any drift family of any tested arm drifted (Evidently's drift-share test failed)."""
        return any(f.drifted for arm in self.arms.values() for f in arm.families)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_dict(self) -> dict:
        """A compact, flat-ish view for pipeline metrics (the full document is `to_json()`)."""
        out: dict = {
            "run_id": self.run_id, "recommendation": self.recommendation.action, "drift_detected": self.drift_detected,
            "alerts": len(self.alerts), "critical_alerts": sum(a.severity == "critical" for a in self.alerts),
            "index_html": self.artifacts.index_html, "summary_json": self.artifacts.summary_json,
        }
        for arm in self.arms.values():
            for f in arm.families:
                out[f"{arm.arm}_{f.family}_drift_share"] = f.drifted_share
        if self.comparison is not None:
            for name, m in self.comparison.metrics.items():
                out[f"{name}_lift"] = m.rel_lift
                out[f"{name}_p_value"] = m.p_value
        return out

    @classmethod
    def from_json(cls, text: str) -> DriftSummary:
        return cls.model_validate_json(text)


def json_schema() -> dict:
    return DriftSummary.model_json_schema()


if __name__ == "__main__":  # pragma: no cover - regenerates the checked-in schema
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
