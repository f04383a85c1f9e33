"""The data validation gate: every world table against its GE suite, one report, raise on failure."""
from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from onevision.validation.derived import Derived, derive
from onevision.validation.ge_runner import TableBatch, run_batches
from onevision.validation.limits import ContractLimits, limits_for_world
from onevision.validation.report import (
    RESULT_FILE,
    DataValidationError,
    ValidationReport,
    custom_failure,
    custom_suite_result,
    failure_messages,
    table_counts,
    write_result,
)
from onevision.validation.suites import CLICK_RATE_PARAMETER, table_expectations
from onevision.world.schema import TABLES, TableSchema

DOCS_DIR = "data_docs"


def _load(world_dir: Path, table: TableSchema) -> pd.DataFrame | dict:
    """The table as pandas, or a failed custom suite result saying why it cannot be read."""
    path = world_dir / table.filename
    if not path.exists():
        failure = custom_failure("expect_table_file_to_exist", f"table file {path} is missing", path=str(path))
        return custom_suite_result([failure])
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        failure = custom_failure("expect_table_file_to_be_readable_parquet",
                                 f"{path} is not readable Parquet ({type(exc).__name__}: {exc})", path=str(path))
        return custom_suite_result([failure])


def _click_rate(frame: pd.DataFrame) -> float | None:
    if "clicked" not in frame.columns or "ordered" not in frame.columns or frame.empty:
        return None
    rate = pd.to_numeric(frame["clicked"], errors="coerce").mean()
    return float(rate) if np.isfinite(rate) else None


def _table_batches(frames: dict[str, pd.DataFrame], derived: Derived, limits: ContractLimits) -> list[TableBatch]:
    batches = []
    for table in TABLES:
        if table.name not in frames:
            continue
        frame = derived.frames[table.name]
        click_rate = _click_rate(frame) if table.name == "impressions" else None
        batches.append(TableBatch(
            table=table.name,
            frame=frame,
            expectations=table_expectations(table, set(frame.columns), limits, derived.checks, click_rate is not None),
            key_columns=[k for k in table.key if k in frame.columns],
            parameters={} if click_rate is None else {CLICK_RATE_PARAMETER: click_rate},
        ))
    return batches


def _error_message(world_dir: Path, report: ValidationReport) -> str:
    n = len(report.failures)
    lines = "\n".join(f"  - {f}" for f in report.failures)
    return (f"data validation failed for {world_dir}: {n} failed expectation{'s' if n != 1 else ''} "
            f"(full result: {report.report_path})\n{lines}")


def validate_world(
    world_dir: Path | str,
    report_dir: Path | None = None,
    *,
    limits: ContractLimits | None = None,
    data_docs: bool = True,
) -> ValidationReport:
    """Validate the five world tables; raise DataValidationError naming each failed expectation.

    Writes the full result to `report_dir/validation_result.json` (default `<world_dir>/validation/`)
    and, with `data_docs`, GE data docs under `report_dir/data_docs/`, whether or not it passes.
    """
    start = time.perf_counter()
    world_dir = Path(world_dir)
    if not world_dir.is_dir():
        raise FileNotFoundError(f"world directory not found: {world_dir}")
    report_dir = Path(report_dir) if report_dir is not None else world_dir / "validation"
    limits = limits or limits_for_world(world_dir)

    loaded = {t.name: _load(world_dir, t) for t in TABLES}
    frames = {name: v for name, v in loaded.items() if isinstance(v, pd.DataFrame)}
    derived = derive(frames, limits.splits, limits.image_shape, limits.slate_size)
    docs_dir = report_dir / DOCS_DIR if data_docs else None
    if docs_dir is not None and docs_dir.exists():
        shutil.rmtree(docs_dir)  # our own output of an earlier run: keep the index to this run
    ge_results, docs_index = run_batches(_table_batches(frames, derived, limits), docs_dir)

    suite_results = {t.name: ge_results.get(t.name, loaded[t.name]) for t in TABLES}
    counts, failures = {}, []
    for table in TABLES:
        rows = len(frames[table.name]) if table.name in frames else None
        counts[table.name] = table_counts(table.name, suite_results[table.name], rows)
        failures += failure_messages(table.name, suite_results[table.name], set(table.key))
    report = ValidationReport(
        success=not failures, tables=counts, report_path=report_dir / RESULT_FILE, data_docs_path=docs_index,
        failures=failures, seconds=time.perf_counter() - start,
    )
    write_result(report.report_path, {
        "success": report.success,
        "world_dir": str(world_dir),
        "image_shape": list(derived.image_shape) if derived.image_shape else None,
        "limits": dataclasses.asdict(limits),
        "failures": failures,
        "tables": {name: {"rows": c.rows, "expectations": c.expectations, "passed": c.passed, "failed": c.failed}
                   for name, c in counts.items()},
        "results": suite_results,
    })
    if failures:
        raise DataValidationError(_error_message(world_dir, report), report)
    return report
