"""Click / order feedback: a JSON object (or a list of them) -> feedback rows.

Fields: event_id (str, the de-duplication key), request_id (str, the ce-id of the served request),
item_id (int), kind ("click" | "order"), ts (RFC 3339 text or epoch seconds).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from monitoring.events.errors import EventRejected
from monitoring.events.schema import FEEDBACK_KINDS
from monitoring.events.timestamps import parse_time

FIELDS = ("event_id", "request_id", "item_id", "kind", "ts")
MAX_BATCH = 10_000


def parse_feedback(body: bytes, received_at: datetime) -> list[dict[str, Any]]:
    """Every row of the body, or EventRejected for the first bad one (a batch is accepted whole or not at all)."""
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventRejected("body_not_json", f"feedback body is not JSON: {exc}") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise EventRejected("empty_batch", "feedback batch is an empty list")
    if len(items) > MAX_BATCH:
        raise EventRejected("batch_too_large", f"feedback batch has {len(items)} events; at most {MAX_BATCH} per request")
    rows = []
    for index, item in enumerate(items):
        where = f"feedback[{index}]" if isinstance(parsed, list) else "feedback"
        rows.append(_row(item, where, received_at))
    return rows


def _row(item: Any, where: str, received_at: datetime) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise EventRejected("not_an_object", f"{where} must be a JSON object with {', '.join(FIELDS)}, got {type(item).__name__}")
    missing = [name for name in FIELDS if item.get(name) is None]
    if missing:
        raise EventRejected(f"missing_{missing[0]}", f"{where} lacks field(s) {', '.join(missing)}")
    for name in ("event_id", "request_id"):
        if not isinstance(item[name], str) or not item[name]:
            raise EventRejected("wrong_type", f"{where}.{name} must be a non-empty string, got {item[name]!r}")
    item_id = item["item_id"]
    if isinstance(item_id, bool) or not isinstance(item_id, int) or not -2**63 <= item_id < 2**63:
        raise EventRejected("wrong_type", f"{where}.item_id must be an integer (int64), got {item_id!r}")
    if item["kind"] not in FEEDBACK_KINDS:
        raise EventRejected("bad_kind", f"{where}.kind={item['kind']!r}: expected one of {', '.join(FEEDBACK_KINDS)}")
    return {"event_id": item["event_id"], "request_id": item["request_id"], "item_id": item_id, "kind": item["kind"],
            "event_time": parse_time(item["ts"], f"{where}.ts"), "received_at": received_at}
