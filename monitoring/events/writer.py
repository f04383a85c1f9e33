"""Rows -> Parquet part files in the artifact store, one per (table, partition) and flush.

Each part is serialised in memory and handed to `ArtifactStore.put_bytes`, which is atomic: a local store
writes a hidden temporary file beside the target and renames it (readers such as `pyarrow.dataset` skip
names starting with '.'), an S3 PutObject appears whole or not at all. A crash therefore loses at most the
rows not yet written and never leaves half a part visible.
"""
from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.events.schema import SCHEMAS, partition_dir
from onevision.storage import ArtifactStore

Row = dict[str, Any]


def group_by_partition(table: str, rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(partition_dir(table, row), []).append(row)
    return groups


def parquet_bytes(table: str, rows: list[Row]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), sink)
    return sink.getvalue()


def write_parts(store: ArtifactStore, prefix: str, table: str, rows: list[Row]) -> Iterator[tuple[str, list[Row]]]:
    """Write one part per partition, yielding (key, rows) after each; a failing write raises with the
    remaining partitions unwritten, so the caller knows exactly which rows are stored."""
    for directory, group in sorted(group_by_partition(table, rows).items()):
        key = f"{prefix}/{directory}/part-{uuid.uuid4().hex}.parquet" if prefix else f"{directory}/part-{uuid.uuid4().hex}.parquet"
        store.put_bytes(key, parquet_bytes(table, group))
        yield key, group
