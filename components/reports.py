"""Markdown and scalars the components publish for the KFP UI (pure functions of step outputs)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing import TYPE_CHECKING

from onevision.evaluation.parity import ParityReport

if TYPE_CHECKING:
    from monitoring.summary import DriftSummary


def validation_scalars(result: Mapping[str, Any]) -> dict[str, float]:
    """success, failed_expectations and rows/expectations/failed per table of validation_result.json."""
    out: dict[str, float] = {
        "success": float(bool(result.get("success"))),
        "failed_expectations": float(len(result.get("failures", []))),
    }
    for table, counts in result.get("tables", {}).items():
        for key in ("rows", "expectations", "failed"):
            if isinstance(counts.get(key), (int, float)):
                out[f"{table}.{key}"] = float(counts[key])
    return out


def validation_markdown(result: Mapping[str, Any]) -> str:
    verdict = "PASSED" if result.get("success") else "FAILED"
    lines = [f"# Data validation {verdict}", "", "| table | rows | expectations | passed | failed |",
             "|---|---:|---:|---:|---:|"]
    for table, c in result.get("tables", {}).items():
        rows = "—" if c.get("rows") is None else c["rows"]
        lines.append(f"| {table} | {rows} | {c.get('expectations', 0)} | {c.get('passed', 0)} | {c.get('failed', 0)} |")
    failures = result.get("failures", [])
    if failures:
        lines += ["", f"## Failed expectations ({len(failures)})", "", *(f"- {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def gate_failure_markdown(verdict: ParityReport) -> str:
    if verdict.passed:
        head = "# Parity gate passed\n\nNothing was held back."
    else:
        head = (f"# Parity gate FAILED — not archived, not deployed\n\n"
                f"The generator fell short of the cascade (ε = {verdict.epsilon:g}):\n\n"
                + "\n".join(f"- {r}" for r in verdict.reasons))
    table = verdict.to_markdown().split("\n", 2)[2]  # drop the report's own title
    return f"{head}\n\n{table}"


def drift_scalars(summary: DriftSummary) -> dict[str, float]:
    """drift_detected, alerts, <arm>.<family>.drifted_share and <metric>.rel_lift / p_value / cuped_variance_reduction
    and srm_mismatch of a drift report."""
    out: dict[str, float] = {"drift_detected": float(summary.drift_detected), "alerts": float(len(summary.alerts))}
    for arm, result in summary.arms.items():
        out[f"{arm}.n_current"] = float(result.n_current)
        for family in result.families:
            out[f"{arm}.{family.family}.drifted_share"] = float(family.drifted_share)
    if summary.comparison is not None:
        out["srm_mismatch"] = float(summary.comparison.srm.mismatch)
    for name, lift in (summary.comparison.metrics if summary.comparison else {}).items():
        if lift.rel_lift is not None:
            out[f"{name}.rel_lift"] = float(lift.rel_lift)
        out[f"{name}.p_value"] = float(lift.p_value)
        if lift.cuped.variance_reduction is not None:
            out[f"{name}.cuped_variance_reduction"] = float(lift.cuped.variance_reduction)
    return out
