"""Monitoring: A/B replay on the synthetic world, Evidently drift reports per arm, arm comparison,
alerts and the promote / hold / rollback recommendation (docs/monitoring.md).

Names are imported lazily so that `onevision --help` (which imports monitoring.cli) stays fast."""
from onevision.lazy import lazy_exports

_EXPORTS = {
    "Arm": "monitoring.arms", "ArmError": "monitoring.arms", "HttpArm": "monitoring.arms",
    "InProcessArm": "monitoring.arms", "QueryBatch": "monitoring.arms", "RetrieverArm": "monitoring.arms",
    "Slates": "monitoring.arms", "arm_from_spec": "monitoring.arms",
    "ReplayConfig": "monitoring.replay", "ReplayLog": "monitoring.replay", "replay_ab": "monitoring.replay",
    "run_replay": "monitoring.replay",
    "MonitoringRules": "monitoring.rules", "load_rules": "monitoring.rules",
    "DriftSummary": "monitoring.summary",
    "run_drift_report": "monitoring.report",
    "compare_arms": "monitoring.compare", "recommend": "monitoring.compare",
    "estimate_effect": "monitoring.stats", "infer": "monitoring.stats",
    "chi_square_p_value": "monitoring.srm", "sequential_p_values": "monitoring.srm",
    "AlertStore": "monitoring.alerts", "evaluate_alerts": "monitoring.alerts",
    "rate_chart_svg": "monitoring.charts",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
