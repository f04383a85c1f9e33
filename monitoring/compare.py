"""Canary vs control: lift of the request-level CTR (share of requests with a click) and CVR (share of
requests with an order), with confidence intervals and a two-proportion z-test, and the promote / hold /
rollback recommendation that combines lift, significance and drift alerts under the rules."""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from monitoring.rules import ComparisonRules, MonitoringRules
from monitoring.stats import compare_proportions
from monitoring.summary import AlertRecord, ArmComparison, MetricLift, Recommendation

RATE_COLUMNS = {"ctr": "clicked", "cvr": "ordered"}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compare_arms(requests: pd.DataFrame, rules: ComparisonRules, windows: Sequence[int] | None = None) -> ArmComparison | None:
    """None when an arm has no request in the selected windows."""
    if windows is not None:
        requests = requests[requests["window"].isin(list(windows))]
    control, canary = requests[requests["arm"] == "control"], requests[requests["arm"] == "canary"]
    if control.empty or canary.empty:
        return None
    lifts = {}
    for metric, column in RATE_COLUMNS.items():
        c = compare_proportions(int(control[column].sum()), len(control), int(canary[column].sum()), len(canary),
                                rules.confidence)
        lifts[metric] = MetricLift(
            metric=metric, control_rate=c.control_rate, canary_rate=c.canary_rate, control_n=c.control_n,
            canary_n=c.canary_n, abs_diff=c.abs_diff, abs_ci=list(c.abs_ci), rel_lift=_finite(c.rel_lift),
            rel_ci=[_finite(v) for v in c.rel_ci], z=c.z, p_value=c.p_value, significant=c.significant(rules.alpha),
        )
    used = sorted(int(w) for w in requests["window"].unique())
    return ArmComparison(windows=used, confidence=rules.confidence, alpha=rules.alpha, metrics=lifts)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"


def canary_only_drift(alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
    """Drift alerts on the canary whose rule did not also fire on the control: the canary, not the
    world, changed. Drift on both arms is environment drift; it does not bias the comparison."""
    control_rules = {a.rule for a in alerts if a.kind == "drift" and a.arm == "control"}
    return [a for a in alerts if a.kind == "drift" and a.arm == "canary" and a.rule not in control_rules]


def recommend(comparison: ArmComparison | None, alerts: Sequence[AlertRecord], rules: MonitoringRules) -> Recommendation:
    decision, minimum = rules.decision, rules.comparison.min_requests
    if comparison is None:
        return Recommendation(action="hold", reasons=["no traffic on one of the arms in the current window"])
    primary = comparison.metrics[decision.primary_metric]
    losses: list[str] = []
    if primary.significant and primary.rel_lift is not None and primary.rel_lift < decision.rollback_max_lift:
        losses.append(f"{primary.metric} lift {_pct(primary.rel_lift)} (p={primary.p_value:.3g}) is significantly "
                      f"below {_pct(decision.rollback_max_lift)}")
    for name in decision.guardrails:
        g = comparison.metrics[name]
        if g.significant and g.rel_lift is not None and g.rel_lift < -decision.guardrail_tolerance:
            losses.append(f"guardrail {name} lift {_pct(g.rel_lift)} (p={g.p_value:.3g}) is below "
                          f"-{decision.guardrail_tolerance:.0%}")
    blocking = [a for a in canary_only_drift(alerts) if a.severity in decision.block_on_drift]
    drift_reasons = [f"canary-only {a.severity} alert {a.rule} ({a.metric})" for a in blocking]
    if losses:
        return Recommendation(action="rollback", reasons=losses + drift_reasons)
    if blocking and decision.rollback_on_canary_drift:
        return Recommendation(action="rollback", reasons=drift_reasons)
    if min(primary.control_n, primary.canary_n) < minimum:  # a significant loss rolls back; a win must wait
        return Recommendation(action="hold", reasons=drift_reasons + [
            f"not enough requests to promote: control {primary.control_n}, canary {primary.canary_n} (need {minimum} per arm)"])
    wins = primary.significant and primary.rel_lift is not None and primary.rel_lift > decision.promote_min_lift
    if wins and not blocking:
        return Recommendation(action="promote", reasons=[
            f"{primary.metric} lift {_pct(primary.rel_lift)} (CI {_pct(primary.rel_ci[0])}..{_pct(primary.rel_ci[1])}, "
            f"p={primary.p_value:.3g}) with no guardrail loss and no blocking drift"])
    reasons = drift_reasons or [f"{primary.metric} lift {_pct(primary.rel_lift)} is not significant at "
                                f"alpha={comparison.alpha} (p={primary.p_value:.3g}) or not above {_pct(decision.promote_min_lift)}"]
    return Recommendation(action="hold", reasons=reasons)
