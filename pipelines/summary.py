"""What a local train run produced, read from its artifacts: data checks, VRQ metrics, parity, gate, archive."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.local import LocalRunResult, MissingRunOutputError

VALIDATE, VRQ, GATE, ARCHIVE, DEPLOY, REASONS = (
    "validate-data", "train-vrq", "parity-gate", "build-archive", "deploy-canary", "gate-failure-report")
VALIDATION_RESULT = "validation_result.json"


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int | None
    expectations: int
    passed: int
    failed: int


@dataclass(frozen=True)
class ParityRow:
    metric: str
    cascade: float | None
    generator: float | None
    ratio: float | None
    threshold: float | None
    status: str


@dataclass(frozen=True)
class RunSummary:
    data_checks: list[TableCheck] = field(default_factory=list)
    data_failures: list[str] = field(default_factory=list)
    data_report: Path | None = None
    vrq_metrics: dict[str, float] = field(default_factory=dict)
    parity: list[ParityRow] = field(default_factory=list)
    gate_passed: bool | None = None  # None: the gate did not run
    gate_reasons: list[str] = field(default_factory=list)
    parity_report: Path | None = None
    archive: Path | None = None
    archive_files: list[Path] = field(default_factory=list)
    deployment: Path | None = None
    deployment_files: list[Path] = field(default_factory=list)
    deployed_to: str | None = None  # the storage URI the deploy step uploaded the model store to
    reasons_report: Path | None = None

    @classmethod
    def from_run(cls, run: LocalRunResult) -> RunSummary:
        fields: dict = {}
        report = _optional(run, VALIDATE, "report")
        if report is not None and (report / VALIDATION_RESULT).exists():
            result = json.loads((report / VALIDATION_RESULT).read_text())
            fields["data_checks"] = [
                TableCheck(t, c.get("rows"), c.get("expectations", 0), c.get("passed", 0), c.get("failed", 0))
                for t, c in result.get("tables", {}).items()
            ]
            fields["data_failures"] = list(result.get("failures", []))
            fields["data_report"] = report / VALIDATION_RESULT
        if VRQ in run.tasks and run.tasks[VRQ].status == "succeeded":
            fields["vrq_metrics"] = dict(run.tasks[VRQ].metadata.get("metrics", {}))
        parity = _optional(run, GATE, "parity")
        if parity is not None and (parity / "parity.json").exists():
            from onevision.evaluation import load_parity
            from onevision.evaluation.parity import HEADLINE_REPORTED

            verdict = load_parity(parity)
            fields["parity"] = [ParityRow(c.metric, c.cascade, c.generator, c.ratio, c.threshold, c.status)
                                for c in verdict.checks() if c.gated or c.metric in HEADLINE_REPORTED]
            fields["gate_passed"], fields["gate_reasons"] = verdict.passed, list(verdict.reasons)
            fields["parity_report"] = parity / "parity.md"
        archive = _optional(run, ARCHIVE, "model_store")
        if archive is not None:
            fields["archive"] = archive
            fields["archive_files"] = sorted(p for p in archive.rglob("*") if p.is_file())
        deployment = _optional(run, DEPLOY, "deployment")
        if deployment is not None:
            fields["deployment"] = deployment
            fields["deployment_files"] = sorted(p for p in deployment.rglob("*") if p.is_file())
            fields["deployed_to"] = run.tasks[DEPLOY].metadata.get("deployment", {}).get("storage_uri")
        fields["reasons_report"] = _optional(run, REASONS, "reasons")
        return cls(**fields)


def _optional(run: LocalRunResult, task: str, output: str) -> Path | None:
    if task not in run.tasks:
        return None
    try:
        return run.artifact(task, output)
    except MissingRunOutputError:
        return None
