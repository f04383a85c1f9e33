"""The drift-report summary (summary.json): a stable, versioned schema. Its JSON Schema is checked in as
monitoring/summary.schema.json; a change of fields must bump SCHEMA_VERSION and regenerate that file
(`python -m monitoring.summary > monitoring/summary.schema.json`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 2
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


class Cuped(_Model):
    """CUPED on the metric, with each user's pre-period rate as covariate."""

    applied: bool
    beta: float | None
    variance_reduction: float | None  # 1 - Var(adjusted) / Var(unadjusted) of the log rate ratio
    covered_users: float  # share of the compared users with a pre-period rate
    reason: str | None  # why it was not applied


class MetricLift(_Model):
    """One metric's lift: `p_value`, `rel_ci` and `significant` come from one method (`method`), so the
    interval excludes 0 exactly when p < alpha. `fixed_p_value` is the one-look z-test, for reference."""

    metric: Literal["ctr", "cvr"]
    method: Literal["fixed", "sequential"]
    control_rate: float  # observed rates
    canary_rate: float
    control_n: int  # requests
    canary_n: int
    control_users: int
    canary_users: int
    rel_lift: float | None  # canary / control - 1, CUPED-adjusted when applied
    rel_ci: list[float | None]
    p_value: float
    significant: bool
    fixed_p_value: float
    cuped: Cuped


class SrmSlice(_Model):
    name: str  # "window 3", "user_history=new"
    control_units: int
    canary_units: int
    p_value: float  # chi-square
    mismatch: bool  # p below the alpha of its family (Bonferroni over the slices)


class SrmCheck(_Model):
    """Sample-ratio mismatch on distinct users per arm against the configured split."""

    checked: bool
    unit: Literal["user"] = "user"
    expected_canary_share: float | None
    control_units: int
    canary_units: int
    observed_canary_share: float | None
    chi_square_p_value: float | None
    sequential_p_value: float | None  # always valid over the looks (Lindon & Malek)
    alpha: float
    mismatch: bool
    windows: list[SrmSlice]
    segments: list[SrmSlice]
    reason: str  # what was expected and what was seen


class ArmComparison(_Model):
    windows: list[int]  # the looks, in order; each look is cumulative from the first
    pre_period_windows: list[int]  # control-only windows before the canary started (CUPED's covariate)
    method: Literal["fixed", "sequential"]
    alpha: float  # intervals are at level 1 - alpha
    tau: float  # mixing standard deviation of the sequential test (log rate ratio)
    srm: SrmCheck
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
            out["srm_mismatch"] = self.comparison.srm.mismatch
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
