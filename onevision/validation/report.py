"""Turn GE suite results (as JSON dicts) into a report, readable failure messages and files."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_FILE = "validation_result.json"
_NOT_PARAMETERS = {"column", "column_list", "column_A", "column_B", "batch_id", "result_format", "path"}


class DataValidationError(Exception):
    """The data broke the contract; the message names every failed expectation."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class TableCounts:
    table: str
    rows: int | None  # None: the table could not be read
    expectations: int
    passed: int

    @property
    def failed(self) -> int:
        return self.expectations - self.passed


@dataclass
class ValidationReport:
    success: bool
    tables: dict[str, TableCounts]
    report_path: Path  # the full result, JSON
    data_docs_path: Path | None = None  # GE data docs index.html
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        rows = [("table", "rows", "expectations", "passed", "failed")]
        rows += [(t.table, "-" if t.rows is None else str(t.rows), str(t.expectations), str(t.passed), str(t.failed))
                 for t in self.tables.values()]
        rows.append(("total", "", *(str(sum(getattr(t, k) for t in self.tables.values()))
                                    for k in ("expectations", "passed", "failed"))))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
        verdict = "PASSED" if self.success else f"FAILED ({len(self.failures)} failed expectations)"
        lines.append(f"validation {verdict} in {self.seconds:.1f}s — report: {self.report_path}")
        if self.data_docs_path is not None:
            lines.append(f"data docs: {self.data_docs_path}")
        return "\n".join(lines)


def custom_failure(expectation: str, details: str, **kwargs: Any) -> dict:
    """A failed check GE cannot run (e.g. the table file is missing), in GE's result layout."""
    return {
        "success": False,
        "expectation_config": {"type": expectation, "kwargs": kwargs, "meta": {}},
        "result": {"details": details},
        "exception_info": {"raised_exception": False},
    }


def custom_suite_result(results: list[dict]) -> dict:
    passed = sum(bool(r["success"]) for r in results)
    return {
        "success": passed == len(results),
        "results": results,
        "statistics": {"evaluated_expectations": len(results), "successful_expectations": passed,
                       "unsuccessful_expectations": len(results) - passed},
    }


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={v}" for k, v in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return repr(value)


def _subject(table: str, config: dict) -> str:
    kwargs, meta = config.get("kwargs", {}), config.get("meta") or {}
    column = meta.get("column") or kwargs.get("column")
    if not column and kwargs.get("column_list"):
        column = "(" + ", ".join(kwargs["column_list"]) + ")"
    if not column and kwargs.get("column_A"):
        column = f"({kwargs['column_A']}, {kwargs['column_B']})"
    return f"{table}.{column}" if column else table


def _parameters(config: dict) -> str:
    kwargs, meta = config.get("kwargs", {}), config.get("meta") or {}
    if meta.get("derived"):
        return f"{meta['check']}; derived column {kwargs.get('column')}"
    params = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in _NOT_PARAMETERS)
    check = meta.get("check")
    return "; ".join(p for p in (check, params) if p)


def _exception_message(exception_info: dict) -> str | None:
    """GE puts one exception_info at the top level, or one per failed metric keyed by metric id."""
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [i.get("exception_message") for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    return "; ".join(str(m) for m in messages) if messages else None


def _detail(result: dict, key_columns: set[str]) -> str:
    exception = _exception_message(result.get("exception_info") or {})
    if exception:
        return f"raised {exception}"
    outcome = result.get("result") or {}
    if "details" in outcome:
        return str(outcome["details"])
    if outcome.get("unexpected_count"):
        n = outcome["unexpected_count"]
        text = f"{n} bad row{'s' if n != 1 else ''}"
        examples = outcome.get("partial_unexpected_list") or []
        if examples:
            text += f", e.g. {_format_value(examples[0])}"
        where = (outcome.get("partial_unexpected_index_list") or [None])[0]
        if isinstance(where, dict):
            keys = {k: v for k, v in where.items() if k in key_columns}
            if keys and not any(v is None or v == "None" for v in keys.values()):
                text += " at " + ", ".join(f"{k}={v}" for k, v in keys.items())
        return text
    if "observed_value" in outcome:
        return f"observed {outcome['observed_value']!r}"
    if config_type(result) == "expect_column_to_exist":
        return "column is missing"
    return "failed"


def config_type(result: dict) -> str:
    return result.get("expectation_config", {}).get("type", "?")


def failure_messages(table: str, suite_result: dict, key_columns: set[str]) -> list[str]:
    """One line per failed expectation: table.column: expectation (parameters) failed — why, e.g. value."""
    lines = []
    for r in suite_result.get("results", []):
        if r.get("success"):
            continue
        config = r.get("expectation_config", {})
        params = _parameters(config)
        lines.append(f"{_subject(table, config)}: {config_type(r)}{f' ({params})' if params else ''} "
                     f"failed — {_detail(r, key_columns)}")
    return sorted(lines)  # GE's result order follows its metric graph, not the suite


def table_counts(table: str, suite_result: dict, rows: int | None) -> TableCounts:
    stats = suite_result.get("statistics", {})
    return TableCounts(table, rows, int(stats.get("evaluated_expectations", 0)), int(stats.get("successful_expectations", 0)))


def write_result(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
