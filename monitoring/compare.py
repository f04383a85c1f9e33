"""Canary vs control: the one decision procedure of `ab compare`, `drift report` and the drift pipeline.

Windows before the first one with canary traffic are the pre-period (control only; each user's rate there is
CUPED's covariate). Every later window is a look at the cumulative data since the canary started: the lift of
request-level CTR (share of requests with a click) and CVR (with an order), users as the unit
(monitoring/stats.py), read sequentially or once (rules.comparison.method); the split is checked for a
sample-ratio mismatch on distinct users (monitoring/srm.py) before anything is decided.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from monitoring import srm as srm_tests
from monitoring.rules import ComparisonRules, MonitoringRules
from monitoring.split import ARMS
from monitoring.stats import UserTotals, estimate_effect, fixed_inference, infer
from monitoring.summary import AlertRecord, ArmComparison, Cuped, MetricLift, Recommendation, SrmCheck, SrmSlice

RATE_COLUMNS = {"ctr": "clicked", "cvr": "ordered"}
USER_HISTORY = "user_history"  # built-in SRM segment: new / returning (seen in the pre-period)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def split_windows(requests: pd.DataFrame, windows: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
    """(pre-period windows, looks): the windows before the first canary request, and the selected ones after."""
    present = sorted(int(w) for w in requests["window"].unique())
    with_canary = requests.loc[requests["arm"] == "canary", "window"]
    if with_canary.empty:
        return present, []
    start = int(with_canary.min())
    looks = [w for w in present if w >= start]
    if windows is not None:
        looks = [w for w in looks if w in set(int(x) for x in windows)]
    return [w for w in present if w < start], looks


def _look_totals(rows: pd.DataFrame, looks: list[int]) -> list[dict[str, pd.DataFrame]]:
    """Per look (cumulative up to its window), each arm's requests and successes of every rate column, by user;
    looks where an arm has no request yet are left out. Grouped once for all metrics."""
    columns = list(RATE_COLUMNS.values())
    out = []
    for window in looks:
        upto = rows[rows["window"] <= window]
        arms = {arm: upto[upto["arm"] == arm].groupby("user_id")[columns].agg(["size", "sum"]) for arm in ARMS}
        if all(len(totals) for totals in arms.values()):
            out.append(arms)
    return out


def _user_totals(totals: pd.DataFrame, column: str, covariate: pd.Series | None) -> UserTotals:
    x = None if covariate is None else covariate.reindex(totals.index).to_numpy(np.float64)
    return UserTotals(totals[(column, "size")].to_numpy(np.int64), totals[(column, "sum")].to_numpy(np.float64), x)


def _units(rows: pd.DataFrame) -> tuple[int, int]:
    return (int(rows.loc[rows["arm"] == "control", "user_id"].nunique()),
            int(rows.loc[rows["arm"] == "canary", "user_id"].nunique()))


def check_split(rows: pd.DataFrame, looks: list[int], pre_users: set[int], expected_canary_share: float | None,
                rules: ComparisonRules) -> SrmCheck:
    control_units, canary_units = _units(rows)
    total = control_units + canary_units
    observed = canary_units / total if total else None
    base = dict(control_units=control_units, canary_units=canary_units, observed_canary_share=observed,
                alpha=rules.srm.alpha)
    if expected_canary_share is None:
        return SrmCheck(checked=False, expected_canary_share=None, chi_square_p_value=None, sequential_p_value=None,
                        mismatch=False, windows=[], segments=[], **base,
                        reason="the expected split is unknown (no canary_percent in the log's metadata; pass "
                               "--expected-canary-percent), so the sample ratio was not checked")
    shares = [1 - expected_canary_share, expected_canary_share]
    chi = srm_tests.chi_square_p_value([control_units, canary_units], shares)
    sequential = None
    if rules.srm.sequential:
        cumulative = [_units(rows[rows["window"] <= w]) for w in looks]
        sequential = srm_tests.sequential_p_values(cumulative, shares, rules.srm.concentration)[-1]
    window_slices = [(f"window {w}", rows[rows["window"] == w]) for w in looks]
    segment_slices: list[tuple[str, pd.DataFrame]] = []
    notes: list[str] = []
    for segment in rules.srm.segments:
        if segment == USER_HISTORY:
            if not pre_users:
                notes.append("segment user_history needs a pre-period; not checked")
                continue
            returning = rows["user_id"].isin(pre_users)
            segment_slices += [("user_history=returning", rows[returning]), ("user_history=new", rows[~returning])]
        elif segment in rows.columns:
            segment_slices += [(f"{segment}={value}", part) for value, part in rows.groupby(segment, sort=True)]
        else:
            notes.append(f"segment {segment} is not a column of the log; not checked")
    slice_alpha = rules.srm.alpha / max(1, len(window_slices) + len(segment_slices))

    def slices(named: list[tuple[str, pd.DataFrame]]) -> list[SrmSlice]:
        out = []
        for name, part in named:
            c, k = _units(part)
            p = srm_tests.chi_square_p_value([c, k], shares)
            out.append(SrmSlice(name=name, control_units=c, canary_units=k, p_value=p, mismatch=p < slice_alpha))
        return out

    windows, segments = slices(window_slices), slices(segment_slices)
    both = int(rows.groupby("user_id")["arm"].nunique().gt(1).sum())
    problems = []
    if chi < rules.srm.alpha:
        problems.append(f"chi-square p={chi:.2g}")
    if sequential is not None and sequential < rules.srm.alpha:
        problems.append(f"sequential p={sequential:.2g}")
    problems += [f"{s.name} p={s.p_value:.2g}" for s in windows + segments if s.mismatch]
    if both:
        problems.append(f"{both} users were served by both arms (the split is not sticky)")
    seen = (f"expected {expected_canary_share:.1%} of users on the canary, saw {observed:.2%} "
            f"({canary_units} of {total})") if total else "no users"
    reason = (f"sample ratio mismatch: {seen}; {', '.join(problems)} below alpha={rules.srm.alpha:g}" if problems
              else f"split as configured: {seen}")
    if notes:
        reason += " (" + "; ".join(notes) + ")"
    return SrmCheck(checked=True, expected_canary_share=expected_canary_share, chi_square_p_value=chi,
                    sequential_p_value=sequential, mismatch=bool(problems), windows=windows, segments=segments,
                    reason=reason, **base)


def compare_arms(requests: pd.DataFrame, rules: ComparisonRules, windows: Sequence[int] | None = None,
                 expected_canary_share: float | None = None) -> ArmComparison | None:
    """None when an arm has no request in the selected windows. `windows` selects the looks (default: every
    window from the canary's start); `expected_canary_share` is the configured split (share of users)."""
    if expected_canary_share is not None and not 0 < expected_canary_share < 1:
        raise ValueError(f"the expected canary share must lie in (0, 1), got {expected_canary_share}")
    pre, looks = split_windows(requests, windows)
    rows = requests[requests["window"].isin(looks)]
    if rows.empty or rows["arm"].nunique() < 2:
        return None
    pre_rows = requests[requests["window"].isin(pre)]
    metrics = {}
    totals = _look_totals(rows, looks)
    for metric, column in RATE_COLUMNS.items():
        covariate = pre_rows.groupby("user_id")[column].mean() if len(pre_rows) else None
        effects = [estimate_effect(_user_totals(look["control"], column, covariate),
                                   _user_totals(look["canary"], column, covariate), rules.cuped) for look in totals]
        inference = infer(effects, rules.method, rules.alpha, rules.tau)
        last = effects[-1]
        ci = inference.ci or (math.nan, math.nan)
        metrics[metric] = MetricLift(
            metric=metric, method=inference.method, control_rate=last.control_rate, canary_rate=last.canary_rate,
            control_n=last.control_n, canary_n=last.canary_n, control_users=last.control_users,
            canary_users=last.canary_users, rel_lift=_finite(last.rel_lift), rel_ci=[_finite(v) for v in ci],
            p_value=inference.p_value, significant=inference.significant,
            fixed_p_value=fixed_inference(last, rules.alpha).p_value,
            cuped=Cuped(**dataclasses.asdict(last.cuped)),
        )
    split = check_split(rows, looks, set(pre_rows["user_id"].tolist()), expected_canary_share, rules)
    return ArmComparison(windows=looks, pre_period_windows=pre, method=rules.method, alpha=rules.alpha, tau=rules.tau,
                         srm=split, metrics=metrics)


def expected_share_of(meta: dict, override_percent: float | None = None) -> float | None:
    """The configured canary share of users: the override, else the replay's `config.canary_percent`."""
    percent = override_percent if override_percent is not None else (meta.get("config") or {}).get("canary_percent")
    if percent is None:
        return None
    if not 0 < float(percent) < 100:
        raise ValueError(f"the expected canary percent must lie in (0, 100), got {percent}")
    return float(percent) / 100


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
    if comparison.srm.mismatch:  # a broken split invalidates every other number: neither promote nor roll back
        return Recommendation(action="hold", reasons=[f"no decision: {comparison.srm.reason}; fix the traffic split "
                                                      "(or the expected percent) and compare again"])
    if not comparison.srm.checked:
        return Recommendation(action="hold", reasons=[f"no decision: {comparison.srm.reason}"])
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
            f"{primary.metric} lift {_pct(primary.rel_lift)} ({comparison.method} {1 - comparison.alpha:.0%} CI "
            f"{_pct(primary.rel_ci[0])}..{_pct(primary.rel_ci[1])}, p={primary.p_value:.3g}) with no guardrail loss "
            "and no blocking drift"])
    reasons = drift_reasons or [f"{primary.metric} lift {_pct(primary.rel_lift)} is not significant ({comparison.method}) at "
                                f"alpha={comparison.alpha} (p={primary.p_value:.3g}) or not above {_pct(decision.promote_min_lift)}"]
    return Recommendation(action="hold", reasons=reasons)
