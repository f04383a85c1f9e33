"""One KServe payload-logger CloudEvent (HTTP binary mode, or structured mode) -> one requests/responses row.

The attributes KServe sets (pkg/logger/worker.go): id (the request id, shared by the request and the
response event), type (REQUEST_TYPE / RESPONSE_TYPE), source (the pod name), specversion 1.0, time,
datacontenttype (the inference request's Content-Type) and the extensions inferenceservicename, namespace,
component, endpoint, metadata (JSON of the logged headers) and recordedtime. The body is the inference
payload itself. Required attributes are checked here, by name, before the SDK parses the event: the SDK
reports a missing binary-mode header as a missing specversion and invents an id for a structured event.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents import exceptions as ce_errors
from cloudevents.http import from_http

from monitoring.events.arms import ArmMapping, model_version
from monitoring.events.errors import EventRejected
from monitoring.events.schema import RESPONSES, TABLE_OF_TYPE
from monitoring.events.timestamps import parse_time

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
REQUIRED = ("id", "type", "source", "specversion")
EXTENSIONS = {"inference_service": "inferenceservicename", "namespace": "namespace", "component": "component",
              "endpoint": "endpoint"}


def _required_attributes(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], bool]:
    """The attributes a reader can name as missing, and whether the event is in structured mode."""
    content_type = headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == STRUCTURED_CONTENT_TYPE:
        try:
            envelope = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventRejected("structured_not_json", f"structured CloudEvent body is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise EventRejected("structured_not_json", "structured CloudEvent body must be a JSON object")
        missing = [name for name in REQUIRED if not envelope.get(name)]
        if missing:
            raise EventRejected(f"missing_{missing[0]}", f"structured CloudEvent lacks attribute(s) {', '.join(missing)}")
        return envelope, True
    missing = [f"ce-{name}" for name in REQUIRED if not headers.get(f"ce-{name}")]
    if missing:
        raise EventRejected(f"missing_{missing[0][3:]}", f"binary-mode CloudEvent lacks header(s) {', '.join(missing)}")
    return {name: headers[f"ce-{name}"] for name in (*REQUIRED, "time") if headers.get(f"ce-{name}")}, False


def parse_inference_event(headers: Mapping[str, str], body: bytes, params: Mapping[str, str], mapping: ArmMapping,
                          received_at: datetime) -> tuple[str, dict[str, Any]]:
    """(table, row) for one logger event; EventRejected naming the problem otherwise.

    `headers` must have lower-case names.
    """
    attributes, structured = _required_attributes(headers, body)
    if attributes["specversion"] != "1.0":
        raise EventRejected("bad_specversion", f"specversion {attributes['specversion']!r} is not supported; expected 1.0")
    table = TABLE_OF_TYPE.get(attributes["type"])
    if table is None:
        raise EventRejected("unknown_type", f"ce-type {attributes['type']!r} is not a KServe logger type; expected one of "
                            f"{', '.join(TABLE_OF_TYPE)}")
    try:
        event = from_http(dict(headers), body, data_unmarshaller=lambda data: data)
    except (ce_errors.GenericException, ValueError) as exc:
        raise EventRejected("bad_cloudevent", f"not a valid CloudEvent: {exc}") from None
    attrs = event.get_attributes()
    payload_text = _payload_text(event.data, structured)
    payload = _json_payload(payload_text)
    # the time as sent: the SDK fills in "now" for a structured event without one
    event_time = parse_time(attributes["time"], "ce-time") if attributes.get("time") else received_at
    row: dict[str, Any] = {"event_id": str(attrs["id"]), "request_id": str(attrs["id"])}
    for column, extension in EXTENSIONS.items():
        value = attrs.get(extension, "")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise EventRejected("bad_extension", f"extension {extension} must be a string, got {type(value).__name__}")
        row[column] = str(value)
    row.update(arm=mapping.arm(params, attrs),
               model_version=model_version(params, payload if table == RESPONSES else None),
               event_time=event_time, received_at=received_at, body=payload_text)
    return table, row


def _payload_text(data: Any, structured: bool) -> str:
    if data is None or data == b"" or data == "":
        raise EventRejected("empty_body", "the event has no data; KServe logs the inference payload as the body")
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise EventRejected("body_not_json", "the event body is not UTF-8 text; expected the JSON inference payload") from None
    if isinstance(data, str):
        return data
    if structured:  # the SDK has already decoded a structured event's JSON `data`
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    raise EventRejected("body_not_json", f"unexpected event data of type {type(data).__name__}")


def _json_payload(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventRejected("body_not_json", f"the event body is not JSON ({exc.msg} at char {exc.pos}); "
                            "expected the JSON inference payload") from None
