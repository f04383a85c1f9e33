"""The sink's tables: the one definition of their columns, their partitions and the CloudEvent types.

A join (requests -> responses -> feedback) is built on exactly these names; see docs/contracts.md.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from monitoring.split import ARMS  # noqa: F401 (the sink's arms are the A/B's)

# KServe's payload logger (pkg/logger/worker.go): one event per request and one per response, both with
# ce-id = the request id (the incoming Ce-Id header or a new UUID).
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"

REQUESTS, RESPONSES, FEEDBACK = "requests", "responses", "feedback"
TABLE_OF_TYPE = {REQUEST_TYPE: REQUESTS, RESPONSE_TYPE: RESPONSES}

FEEDBACK_KINDS = ("click", "order")
DEFAULT_PREFIX = "events"  # under the store: <store>/events/<table>/...
UNKNOWN_VERSION = "unknown"

TIMESTAMP = pa.timestamp("us", tz="UTC")

PAYLOAD_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("request_id", pa.string()),
    ("inference_service", pa.string()),
    ("namespace", pa.string()),
    ("component", pa.string()),
    ("endpoint", pa.string()),
    ("arm", pa.string()),
    ("model_version", pa.string()),
    ("event_time", TIMESTAMP),
    ("received_at", TIMESTAMP),
    ("body", pa.string()),
])

FEEDBACK_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("request_id", pa.string()),
    ("item_id", pa.int64()),
    ("kind", pa.string()),
    ("event_time", TIMESTAMP),
    ("received_at", TIMESTAMP),
])

SCHEMAS = {REQUESTS: PAYLOAD_SCHEMA, RESPONSES: PAYLOAD_SCHEMA, FEEDBACK: FEEDBACK_SCHEMA}


def hour_of(ts: datetime) -> str:
    """The `hour=` partition value, YYYYMMDDHH in UTC."""
    return ts.astimezone(timezone.utc).strftime("%Y%m%d%H")


def partition_dir(table: str, row: dict) -> str:
    """The partition a row lands in, relative to the prefix: hive-style `name=value` directories.

    requests/responses: `<table>/arm=<arm>/model_version=<v>/hour=<YYYYMMDDHH>`; feedback: `feedback/hour=...`.
    """
    hour = f"hour={hour_of(row['event_time'])}"
    if table == FEEDBACK:
        return f"{FEEDBACK}/{hour}"
    return f"{table}/arm={row['arm']}/model_version={row['model_version']}/{hour}"
