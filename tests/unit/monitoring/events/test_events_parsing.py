"""One KServe logger CloudEvent or feedback body -> rows, or a rejection naming the problem."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from monitoring.events.arms import ArmMapping
from monitoring.events.cloudevent import parse_inference_event
from monitoring.events.errors import EventRejected
from monitoring.events.feedback import parse_feedback
from monitoring.events.schema import REQUEST_TYPE, RESPONSE_TYPE

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def kserve_headers(**overrides: str) -> dict[str, str]:
    """What KServe's agent sends (pkg/logger/worker.go), lower-cased as the server sees them."""
    headers = {"ce-id": "req-1", "ce-type": REQUEST_TYPE, "ce-source": "onevision-predictor-abc", "ce-specversion": "1.0",
               "ce-time": "2024-05-01T11:59:58.123456789Z", "ce-inferenceservicename": "onevision",
               "ce-namespace": "onevision-dev", "ce-component": "predictor", "ce-endpoint": "",
               "ce-metadata": "{}", "ce-recordedtime": "2024-05-01T11:59:58.2Z", "content-type": "application/json"}
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


def parse(headers, body=b'{"inputs": []}', params=None, mapping=ArmMapping()):
    return parse_inference_event(headers, body, params or {}, mapping, NOW)


def test_a_kserve_request_event_becomes_a_requests_row():
    table, row = parse(kserve_headers())
    assert table == "requests"
    assert row == {"event_id": "req-1", "request_id": "req-1", "inference_service": "onevision",
                   "namespace": "onevision-dev", "component": "predictor", "endpoint": "", "arm": "control",
                   "model_version": "unknown", "event_time": datetime(2024, 5, 1, 11, 59, 58, 123456, tzinfo=timezone.utc),
                   "received_at": NOW, "body": '{"inputs": []}'}


def test_a_response_takes_its_model_version_from_the_v2_body_and_its_arm_from_the_url():
    body = json.dumps({"model_name": "generator", "model_version": "v4", "outputs": []}).encode()
    table, row = parse(kserve_headers(**{"ce-type": RESPONSE_TYPE}), body, {"arm": "canary"})
    assert (table, row["arm"], row["model_version"], row["request_id"]) == ("responses", "canary", "v4", "req-1")


def test_the_canary_extension_and_its_values_are_configurable():
    mapping = ArmMapping(extension="endpoint", canary_values=("canary", "latest"))
    assert parse(kserve_headers(**{"ce-endpoint": "latest"}), mapping=mapping)[1]["arm"] == "canary"
    assert parse(kserve_headers(**{"ce-endpoint": "default"}), mapping=mapping)[1]["arm"] == "control"


def test_an_unsafe_model_version_is_made_path_safe():
    assert parse(kserve_headers(), params={"model_version": "../v/1"})[1]["model_version"] == "v-1"


def test_a_structured_event_is_accepted():
    envelope = {"id": "req-2", "type": RESPONSE_TYPE, "source": "pod", "specversion": "1.0",
                "datacontenttype": "application/json", "data": {"outputs": [1]}}
    table, row = parse({"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode())
    assert (table, row["event_id"], json.loads(row["body"])) == ("responses", "req-2", {"outputs": [1]})
    assert row["event_time"] == NOW  # no time attribute: the arrival time


BAD_EVENTS = {
    "missing_id": (kserve_headers(**{"ce-id": None}), b"{}", "ce-id"),
    "missing_type": (kserve_headers(**{"ce-type": None}), b"{}", "ce-type"),
    "missing_source": (kserve_headers(**{"ce-source": None}), b"{}", "ce-source"),
    "missing_specversion": (kserve_headers(**{"ce-specversion": None}), b"{}", "ce-specversion"),
    "bad_specversion": (kserve_headers(**{"ce-specversion": "0.3"}), b"{}", "0.3"),
    "unknown_type": (kserve_headers(**{"ce-type": "com.example.other"}), b"{}", "com.example.other"),
    "body_not_json": (kserve_headers(), b"not json", "not JSON"),
    "empty_body": (kserve_headers(), b"", "no data"),
    "bad_time": (kserve_headers(**{"ce-time": "yesterday"}), b"{}", "ce-time"),
    "structured_not_json": ({"content-type": "application/cloudevents+json"}, b"{oops", "not JSON"),
}


@pytest.mark.parametrize("reason", BAD_EVENTS)
def test_a_bad_inference_event_is_rejected_naming_the_problem(reason):
    headers, body, named = BAD_EVENTS[reason]
    with pytest.raises(EventRejected) as caught:
        parse(headers, body)
    assert caught.value.reason == reason and named in str(caught.value) and 400 <= caught.value.status < 500


def test_an_arm_outside_control_and_canary_is_rejected():
    with pytest.raises(EventRejected, match="arm='blue'"):
        parse(kserve_headers(), params={"arm": "blue"})


def click(**overrides):
    event = {"event_id": "f-1", "request_id": "req-1", "item_id": 42, "kind": "click", "ts": "2024-05-01T12:00:01Z"}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def test_a_feedback_batch_becomes_rows():
    rows = parse_feedback(json.dumps([click(), click(event_id="f-2", kind="order", ts=1714564802)]).encode(), NOW)
    assert [(r["event_id"], r["kind"], r["item_id"]) for r in rows] == [("f-1", "click", 42), ("f-2", "order", 42)]
    assert rows[1]["event_time"] == datetime(2024, 5, 1, 12, 0, 2, tzinfo=timezone.utc)
    assert rows[0]["received_at"] == NOW


BAD_FEEDBACK = {
    "missing_request_id": (click(request_id=None), "request_id"),
    "missing_event_id": (click(event_id=None), "event_id"),
    "wrong_type": (click(item_id="42"), "item_id"),
    "bad_kind": (click(kind="view"), "view"),
    "bad_time": (click(ts="soon"), "ts"),
    "not_an_object": ([1], "feedback[0]"),
    "empty_batch": ([], "empty"),
}


@pytest.mark.parametrize("reason", BAD_FEEDBACK)
def test_bad_feedback_is_rejected_naming_the_problem(reason):
    event, named = BAD_FEEDBACK[reason]
    with pytest.raises(EventRejected) as caught:
        parse_feedback(json.dumps(event).encode(), NOW)
    assert caught.value.reason == reason and named in str(caught.value)


def test_feedback_that_is_not_json_is_rejected():
    with pytest.raises(EventRejected, match="not JSON"):
        parse_feedback(b"click!", NOW)
