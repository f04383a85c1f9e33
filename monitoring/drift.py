"""Drift of one arm between a reference and a current window, computed by Evidently.

One Evidently Report per arm: a ValueDrift per configured test (method and threshold from the rules)
and a DriftedColumnsCount per family (outcome, input, prediction). The per-metric results of the
summary are read back from the snapshot (`Snapshot.dict()`: metric values and test statuses); nothing
is re-computed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.rules import DRIFT_COLUMNS, DriftRules, DriftTest
from monitoring.summary import FamilyDrift, MetricDrift, SkippedTest

OTHER = "other"


@dataclass
class PreparedWindows:
    reference: pd.DataFrame
    current: pd.DataFrame
    tests: list[DriftTest]
    skipped: list[SkippedTest]


def _fold_sid_prefix(reference: pd.Series, current: pd.Series, min_count: int) -> tuple[pd.Series, pd.Series]:
    """SID prefixes as categories; those seen fewer than `min_count` times in the reference are pooled
    as "other" in both windows, so a rare prefix does not give chi-square an expected count near 0."""
    counts = reference.value_counts()
    keep = {v for v, c in counts.items() if c >= min_count}

    def fold(s: pd.Series) -> pd.Series:
        return s.map(lambda v: str(int(v)) if v in keep else OTHER)

    return fold(reference), fold(current)


def prepare_windows(reference: pd.DataFrame, current: pd.DataFrame, rules: DriftRules) -> PreparedWindows:
    """The columns the tests read, typed for Evidently; tests that cannot run are skipped with a reason."""
    tests: list[DriftTest] = []
    skipped: list[SkippedTest] = []
    ref_cols: dict[str, pd.Series] = {}
    cur_cols: dict[str, pd.Series] = {}
    for test in rules.tests:
        col = test.column
        if col not in reference.columns or col not in current.columns:
            skipped.append(SkippedTest(name=test.name, reason=f"column '{col}' is not in both request logs"))
            continue
        ref, cur = reference[col], current[col]
        if col == "sid_prefix":
            if (ref < 0).all() and (cur < 0).all():
                skipped.append(SkippedTest(name=test.name, reason="the arm returns no SIDs (sid_prefix is -1)"))
                continue
            ref, cur = _fold_sid_prefix(ref, cur, rules.sid_min_count)
        ref_valid, cur_valid = ref.dropna(), cur.dropna()
        if ref_valid.empty or cur_valid.empty:
            skipped.append(SkippedTest(name=test.name, reason=f"column '{col}' has no values in a window (arm without encoder?)"))
            continue
        values = pd.concat([ref_valid, cur_valid])
        if values.nunique() < 2:
            skipped.append(SkippedTest(name=test.name, reason=f"column '{col}' is constant ({values.iloc[0]!r}) in both windows"))
            continue
        if DRIFT_COLUMNS[col] == "categorical" and col != "sid_prefix":
            ref, cur = ref.astype("int64").astype(str), cur.astype("int64").astype(str)
        ref_cols[col], cur_cols[col] = ref.reset_index(drop=True), cur.reset_index(drop=True)
        tests.append(test)
    return PreparedWindows(pd.DataFrame(ref_cols), pd.DataFrame(cur_cols), tests, skipped)


def _value_drift_key(config: dict) -> tuple[str, str]:
    return str(config.get("column")), str(config.get("method"))


def run_evidently(prepared: PreparedWindows, rules: DriftRules) -> Any:
    """Run the Evidently report; returns the Snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    columns = list(prepared.reference.columns)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if DRIFT_COLUMNS[c] == "numerical"],
        categorical_columns=[c for c in columns if DRIFT_COLUMNS[c] == "categorical"],
    )
    metrics: list[Any] = [ValueDrift(column=t.column, method=t.method, threshold=t.threshold) for t in prepared.tests]
    for family in ("outcome", "input", "prediction"):
        family_tests = [t for t in prepared.tests if t.family == family]
        if family_tests:
            metrics.append(DriftedColumnsCount(
                columns=[t.column for t in family_tests],
                per_column_method={t.column: t.method for t in family_tests},
                per_column_threshold={t.column: t.threshold for t in family_tests},
                drift_share=rules.drift_share.get(family, 0.5),
            ))
    report = Report(metrics, include_tests=True)
    return report.run(Dataset.from_pandas(prepared.current, data_definition=definition),
                      Dataset.from_pandas(prepared.reference, data_definition=definition))


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def read_snapshot(snapshot_dict: dict, prepared: PreparedWindows, rules: DriftRules) -> tuple[list[MetricDrift], list[FamilyDrift]]:
    """Per-test and per-family results from `Snapshot.dict()` (metric values and test statuses)."""
    status_of: dict[str, str] = {}
    for test in snapshot_dict.get("tests", []):
        metric_id = test.get("metric_config", {}).get("metric_id")
        if metric_id is not None:
            status = test.get("status", "ERROR")
            status_of[metric_id] = str(getattr(status, "value", status))  # a TestStatus enum in Snapshot.dict()
    by_key = {(t.column, t.method): t for t in prepared.tests}
    family_of_columns = {
        tuple(sorted(t.column for t in prepared.tests if t.family == f)): f for f in ("outcome", "input", "prediction")
    }
    metrics: list[MetricDrift] = []
    families: list[FamilyDrift] = []
    for entry in snapshot_dict.get("metrics", []):
        config, metric_id = entry.get("config", {}), entry.get("id", "")
        kind = str(config.get("type", ""))
        status = status_of.get(metric_id, "ERROR")
        if kind.endswith(":ValueDrift"):
            test = by_key.get(_value_drift_key(config))
            if test is None:
                raise ValueError(f"Evidently snapshot has a ValueDrift {config} that matches no configured test")
            metrics.append(MetricDrift(
                name=test.name, family=test.family, column=test.column, method=test.method,
                score_kind=test.score_kind, score=_float(entry.get("value")), threshold=float(config.get("threshold", test.threshold)),
                drifted=status == "FAIL", status=status, evidently_metric_id=metric_id,
            ))
        elif kind.endswith(":DriftedColumnsCount"):
            cols = [str(c) for c in config.get("columns", [])]
            family = family_of_columns.get(tuple(sorted(cols)))
            if family is None:
                raise ValueError(f"Evidently snapshot has a DriftedColumnsCount over {cols} that matches no family")
            value = entry.get("value", {}) or {}
            families.append(FamilyDrift(
                family=family, columns=cols, drifted_count=float(value.get("count", 0.0)),
                drifted_share=float(value.get("share", 0.0)),
                drift_share_threshold=float(config.get("drift_share", rules.drift_share.get(family, 0.5))),
                drifted=status == "FAIL", status=status, evidently_metric_id=metric_id,
            ))
    return metrics, families

