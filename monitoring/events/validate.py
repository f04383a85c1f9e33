"""The Great Expectations gate of a joined request log (`monitoring.events.join`), like the world's tables get:
each arm known, one row per request id, 0/1 outcomes, an order only after a click, every impression of a logged
request. A failure raises DataValidationError naming each failed expectation, before a drift report uses the log."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from monitoring.replay import ReplayLog
from monitoring.split import ARMS
from onevision.validation.ge_runner import TableBatch, run_batches
from onevision.validation.report import DataValidationError, ValidationReport, failure_messages, table_counts, write_result

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

RESULT_FILE = "request_log_validation.json"


def _expectations(table: str) -> list[Expectation]:
    import great_expectations.expectations as gxe

    between, in_set = gxe.ExpectColumnValuesToBeBetween, gxe.ExpectColumnValuesToBeInSet
    ordered_after_click = gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="clicked", column_B="ordered", or_equal=True, meta={"check": "an order needs a click"})
    if table == "requests":
        return [gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "the log is not empty"}),
                gxe.ExpectColumnValuesToBeUnique(column="request_id", meta={"check": "one row per request"}),
                in_set(column="arm", value_set=list(ARMS)), between(column="window", min_value=0),
                in_set(column="clicked", value_set=[0, 1]), in_set(column="ordered", value_set=[0, 1]),
                between(column="n_results", min_value=0), ordered_after_click,
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="clicks", column_B="clicked", or_equal=True,
                                                            meta={"check": "clicks count the clicked flag"})]
    return [between(column="position", min_value=0), between(column="item_id", min_value=0),
            in_set(column="clicked", value_set=[0, 1]), in_set(column="ordered", value_set=[0, 1]), ordered_after_click,
            gxe.ExpectColumnValuesToBeNull(column="_unknown_request",
                                           meta={"column": "request_id", "check": "a logged request", "derived": True})]


def validate_request_log(log: ReplayLog, report_dir: Path) -> ValidationReport:
    start = time.perf_counter()
    impressions = log.impressions.assign(_unknown_request=log.impressions["request_id"].where(
        ~log.impressions["request_id"].isin(set(log.requests["request_id"]))))
    frames = {"requests": log.requests, "impressions": impressions}
    keys = {"requests": ["request_id"], "impressions": ["request_id", "position"]}
    batches = [TableBatch(name, frame.reset_index(drop=True), _expectations(name), keys[name]) for name, frame in frames.items()]
    results, _ = run_batches(batches, None)
    failures = sorted(line for name in frames for line in failure_messages(name, results[name], set(keys[name])))
    report = ValidationReport(
        success=not failures, tables={name: table_counts(name, results[name], len(frames[name])) for name in frames},
        report_path=Path(report_dir) / RESULT_FILE, failures=failures, seconds=time.perf_counter() - start)
    write_result(report.report_path, {"success": report.success, "failures": failures, "results": results})
    if failures:
        raise DataValidationError("the joined request log breaks its contract:\n  " + "\n  ".join(failures), report)
    return report
