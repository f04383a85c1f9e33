"""Monitoring rules: which drift tests run on which columns, how arms are compared, which alerts fire
and when a canary is promoted, held or rolled back. Loaded from YAML (default: monitoring/rules.yaml)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")

Family = Literal["outcome", "input", "prediction"]
Severity = Literal["info", "warning", "critical"]
Action = Literal["promote", "hold", "rollback"]
ColumnKind = Literal["categorical", "numerical"]

# Evidently stat tests (by registered name) and how their score reads. p-value tests flag drift when
# score < threshold; distances when score >= threshold (Evidently's own convention, see its stattests).
P_VALUE_METHODS = frozenset({"z", "chisquare", "ks", "fisher_exact", "g_test", "mannw", "t_test", "anderson",
                             "cramer_von_mises", "es"})
DISTANCE_METHODS = frozenset({"psi", "jensenshannon", "wasserstein", "kl_div", "hellinger", "TVD", "ed"})
CATEGORICAL_ONLY = frozenset({"z", "chisquare", "fisher_exact", "g_test", "TVD"})
NUMERICAL_ONLY = frozenset({"ks", "wasserstein", "mannw", "t_test", "anderson", "cramer_von_mises", "es", "ed"})

# Columns of requests.parquet that a drift test may read, and how Evidently must type them.
DRIFT_COLUMNS: dict[str, ColumnKind] = {
    "clicked": "categorical", "ordered": "categorical", "expected_ctr": "numerical", "expected_cvr": "numerical",
    "expected_orders": "numerical", "img_brightness": "numerical", "img_contrast": "numerical",
    "img_saturation": "numerical", "img_sharpness": "numerical", "emb_pc1": "numerical", "emb_pc2": "numerical",
    "sid_prefix": "categorical", "diversity": "numerical", "n_results": "numerical", "latency_ms": "numerical",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftTest(_Strict):
    """One Evidently ValueDrift: `name` is how the summary and alerts call it."""

    name: str
    column: str
    family: Family
    method: str
    threshold: float

    @model_validator(mode="after")
    def _check(self) -> DriftTest:
        if self.column not in DRIFT_COLUMNS:
            raise ValueError(f"drift test '{self.name}': unknown column '{self.column}'; expected one of {sorted(DRIFT_COLUMNS)}")
        if self.method not in P_VALUE_METHODS | DISTANCE_METHODS:
            raise ValueError(
                f"drift test '{self.name}': unknown method '{self.method}'; expected one of "
                f"{sorted(P_VALUE_METHODS | DISTANCE_METHODS)}"
            )
        kind = DRIFT_COLUMNS[self.column]
        if (kind == "numerical" and self.method in CATEGORICAL_ONLY) or (kind == "categorical" and self.method in NUMERICAL_ONLY):
            raise ValueError(f"drift test '{self.name}': method '{self.method}' does not apply to {kind} column '{self.column}'")
        if self.method in P_VALUE_METHODS and not 0 < self.threshold < 1:
            raise ValueError(f"drift test '{self.name}': a p-value threshold must lie in (0, 1), got {self.threshold}")
        if self.threshold <= 0:
            raise ValueError(f"drift test '{self.name}': threshold must be > 0, got {self.threshold}")
        return self

    @property
    def score_kind(self) -> Literal["p_value", "distance"]:
        return "p_value" if self.method in P_VALUE_METHODS else "distance"


class DriftRules(_Strict):
    tests: list[DriftTest]
    # A family drifts when Evidently's DriftedColumnsCount share of its columns reaches this share.
    drift_share: dict[Family, float] = Field(default_factory=lambda: {"outcome": 0.5, "input": 0.5, "prediction": 0.5})
    sid_min_count: int = 5  # SID prefixes seen fewer times in the reference window are pooled as "other"
    min_requests: int = 200  # an arm needs this many requests in both windows to be tested

    @field_validator("tests")
    @classmethod
    def _unique(cls, tests: list[DriftTest]) -> list[DriftTest]:
        names = [t.name for t in tests]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"drift test names must be unique; repeated: {dup}")
        if not tests:
            raise ValueError("drift.tests is empty; expected at least one test")
        pairs = [(t.family, t.column) for t in tests]
        twice = sorted({f"{f}/{c}" for f, c in pairs if pairs.count((f, c)) > 1})
        if twice:
            raise ValueError(f"a column may be tested once per family (DriftedColumnsCount takes one method per column); repeated: {twice}")
        return tests

    @field_validator("drift_share")
    @classmethod
    def _shares(cls, shares: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in shares.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"drift_share values must lie in (0, 1]; got {bad}")
        return shares

    def family(self, family: str) -> list[DriftTest]:
        return [t for t in self.tests if t.family == family]


class SrmRules(_Strict):
    alpha: float = 0.001  # an SRM is flagged below this p-value (per window and segment: Bonferroni-split)
    sequential: bool = True  # also the always-valid Dirichlet-multinomial test over the looks
    segments: list[str] = Field(default_factory=lambda: ["user_history"])  # request columns to check the split within;
    # "user_history" (new / returning, derived from the pre-period) is built in; others must be columns of the log
    concentration: float = 10_000.0  # of the sequential test's Dirichlet prior around the expected split

    @model_validator(mode="after")
    def _check(self) -> SrmRules:
        if not 0 < self.alpha < 1 or self.concentration <= 0:
            raise ValueError(f"srm.alpha must lie in (0, 1) and srm.concentration be > 0; got {self.alpha}, {self.concentration}")
        return self


class ComparisonRules(_Strict):
    method: Literal["sequential", "fixed"] = "sequential"  # sequential: valid when read at every window
    alpha: float = 0.05  # of the test; the lift intervals are at level 1 - alpha, from the same method
    tau: float = 0.05  # sequential test: mixing standard deviation of the log rate ratio (the lifts it expects)
    cuped: bool = True  # variance reduction with each user's pre-period rate (when the log has a pre-period)
    min_requests: int = 200  # per arm, below which a canary is not promoted (a significant loss still rolls back)
    srm: SrmRules = SrmRules()

    @model_validator(mode="after")
    def _check(self) -> ComparisonRules:
        if not 0 < self.alpha < 1 or self.tau <= 0:
            raise ValueError(f"comparison.alpha must lie in (0, 1) and comparison.tau be > 0; got {self.alpha}, {self.tau}")
        return self


class DecisionRules(_Strict):
    primary_metric: Literal["ctr", "cvr"] = "ctr"
    guardrails: list[Literal["ctr", "cvr"]] = Field(default_factory=lambda: ["cvr"])
    promote_min_lift: float = 0.0  # relative lift of the primary metric (significant) needed to promote
    rollback_max_lift: float = 0.0  # a significant relative lift below this rolls back
    guardrail_tolerance: float = 0.05  # a guardrail may drop this much (relative) before it counts as a loss
    block_on_drift: list[Severity] = Field(default_factory=lambda: ["critical"])  # canary drift alerts that stop a promotion
    rollback_on_canary_drift: bool = False  # roll back when only the canary drifts (at block_on_drift severities)


class AlertRule(_Strict):
    """kind=drift: fires per arm when the family's drift share test fails (or, with `any_test`, when any
    of its tests fails). kind=lift: fires when the canary's lift of `metric` is significant and below `below`."""

    name: str
    kind: Literal["drift", "lift"]
    severity: Severity
    family: Family | None = None
    any_test: bool = False
    arms: list[Literal["control", "canary"]] = Field(default_factory=lambda: ["control", "canary"])
    metric: Literal["ctr", "cvr"] | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if self.kind == "drift" and self.family is None:
            raise ValueError(f"alert rule '{self.name}': kind 'drift' needs a family (outcome, input or prediction)")
        if self.kind == "lift" and (self.metric is None or self.below is None):
            raise ValueError(f"alert rule '{self.name}': kind 'lift' needs metric and below")
        return self


class MonitoringRules(_Strict):
    drift: DriftRules
    comparison: ComparisonRules = ComparisonRules()
    decision: DecisionRules = DecisionRules()
    alerts: list[AlertRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _families_tested(self) -> MonitoringRules:
        for rule in self.alerts:
            if rule.kind == "drift" and not self.drift.family(rule.family or ""):
                raise ValueError(f"alert rule '{rule.name}' watches family '{rule.family}', which has no drift test")
        return self


def load_rules(path: str | Path | None = None) -> MonitoringRules:
    """Rules from a YAML file (default: the packaged monitoring/rules.yaml)."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    if not path.is_file():
        raise FileNotFoundError(f"monitoring rules file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"monitoring rules file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"monitoring rules file {path} must hold a mapping with 'drift', 'comparison', 'decision', 'alerts'")
    try:
        return MonitoringRules.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"monitoring rules file {path} is invalid:\n{exc}") from exc


def as_rules(rules: MonitoringRules | str | Path | None) -> MonitoringRules:
    return rules if isinstance(rules, MonitoringRules) else load_rules(rules)
