"""Run one GE ValidationDefinition per table in an ephemeral context; optionally build data docs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

DOCS_SITE = "onevision"
PARTIAL_UNEXPECTED = 5


@dataclass
class TableBatch:
    table: str
    frame: pd.DataFrame
    expectations: list[Expectation]
    key_columns: list[str]  # reported with each bad row
    parameters: dict[str, Any] = field(default_factory=dict)  # values for $PARAMETER kwargs


def ephemeral_context(docs_dir: Path | None) -> EphemeralDataContext:
    """In-memory stores, no analytics, no progress bars, and only our own data docs site (if any)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            # GX demands an absolute base_directory; a relative --out (as in docs/data.md) is resolved here
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "show_how_to_buttons": False,
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_batches(batches: Sequence[TableBatch], docs_dir: Path | None) -> tuple[dict[str, dict], Path | None]:
    """GE suite results as JSON dicts keyed by table, and the data docs index when built."""
    import great_expectations as gx

    context = ephemeral_context(docs_dir)
    source = context.data_sources.add_pandas("world")
    results: dict[str, dict] = {}
    for batch in batches:
        definition = source.add_dataframe_asset(batch.table).add_batch_definition_whole_dataframe("whole_table")
        suite = context.suites.add(gx.ExpectationSuite(name=batch.table, expectations=batch.expectations))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=batch.table, data=definition, suite=suite)
        )
        result = validation.run(
            batch_parameters={"dataframe": batch.frame},
            expectation_parameters=batch.parameters or None,
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": PARTIAL_UNEXPECTED,
                "unexpected_index_column_names": batch.key_columns,
            },
        )
        results[batch.table] = result.to_json_dict()
    index = None
    if docs_dir is not None and batches:
        context.build_data_docs(site_names=[DOCS_SITE])
        index = docs_dir / "index.html"
    return results, index
