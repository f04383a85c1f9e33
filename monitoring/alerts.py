"""Alert rules → alert records, and the alert store: one JSON file per alert under `alerts/` of the report
store (local directory or s3:// prefix), open until acknowledged."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitoring.rules import MonitoringRules
from monitoring.summary import AlertRecord, ArmComparison, ArmDrift

ALERTS_PREFIX = "alerts"
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class AlertContext:
    run_id: str
    created: str
    window: str  # "reference [0] -> current [1]"
    summary_uri: str | None


def evaluate_alerts(
    arms: Mapping[str, ArmDrift], comparison: ArmComparison | None, rules: MonitoringRules, ctx: AlertContext
) -> list[AlertRecord]:
    alerts: list[AlertRecord] = []
    for rule in rules.alerts:
        for arm_label in rule.arms:
            arm = arms.get(arm_label)
            if rule.kind == "drift":
                if arm is None or arm.status != "tested":
                    continue
                family = next((f for f in arm.families if f.family == rule.family), None)
                drifted = [m for m in arm.metrics if m.family == rule.family and m.drifted]
                fired = bool(drifted) if rule.any_test else bool(family and family.drifted)
                if not fired:
                    continue
                names = ", ".join(f"{m.name} ({m.method} {m.score_kind}={m.score:.3g})" if m.score is not None
                                  else m.name for m in drifted)
                alerts.append(AlertRecord(
                    id=f"{ctx.run_id}-{rule.name}-{arm_label}", run_id=ctx.run_id, created=ctx.created, status="open",
                    rule=rule.name, kind="drift", severity=rule.severity, metric=f"{rule.family}_drift_share",
                    arm=arm_label, model=arm.model, window=ctx.window,
                    value=family.drifted_share if family else None,
                    threshold=family.drift_share_threshold if family else 0.0,
                    message=f"{rule.family} drift on {arm_label}: {names or 'no single test failed'}",
                    report=arm.report_html, summary=ctx.summary_uri,
                ))
            elif comparison is not None and arm_label == "canary":
                lift = comparison.metrics[rule.metric or "ctr"]
                below = rule.below if rule.below is not None else 0.0  # set for kind 'lift' (validated)
                if lift.significant and lift.rel_lift is not None and lift.rel_lift < below:
                    alerts.append(AlertRecord(
                        id=f"{ctx.run_id}-{rule.name}-canary", run_id=ctx.run_id, created=ctx.created, status="open",
                        rule=rule.name, kind="lift", severity=rule.severity, metric=f"{lift.metric}_rel_lift",
                        arm="canary", model=arm.model if arm else None, window=ctx.window, value=lift.rel_lift,
                        threshold=below,
                        message=(f"canary {lift.metric} {lift.canary_rate:.3f} vs control {lift.control_rate:.3f}: "
                                 f"lift {lift.rel_lift:+.1%} (p={lift.p_value:.3g}) below {below:+.1%}"),
                        report=arm.report_html if arm else None, summary=ctx.summary_uri,
                    ))
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER[a.severity], a.rule, a.arm))


class AlertStore:
    """Alerts of every report run written to one store: `alerts/<alert id>.json`."""

    def __init__(self, uri: str):
        from onevision.storage import open_store

        self.store = open_store(uri).join(ALERTS_PREFIX)

    def write(self, alerts: Sequence[AlertRecord]) -> list[str]:
        keys = []
        for alert in alerts:
            key = f"{alert.id}.json"
            self.store.put_json(key, alert.model_dump(mode="json"))
            keys.append(self.store.uri_of(key))
        return keys

    def all(self) -> list[AlertRecord]:
        records = [AlertRecord.model_validate(self.store.get_json(k)) for k in self.store.list() if k.endswith(".json")]
        return sorted(records, key=lambda a: (a.created, SEVERITY_ORDER[a.severity], a.id), reverse=True)

    def open_alerts(self) -> list[AlertRecord]:
        return [a for a in self.all() if a.status == "open"]

    def acknowledge(self, alert_id: str) -> AlertRecord:
        key = f"{alert_id}.json"
        if not self.store.exists(key):
            raise KeyError(f"no alert '{alert_id}' in {self.store.uri}")
        record = AlertRecord.model_validate(self.store.get_json(key)).model_copy(update={"status": "acknowledged"})
        self.store.put_json(key, record.model_dump(mode="json"))
        return record
