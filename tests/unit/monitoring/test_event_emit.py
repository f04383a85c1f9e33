"""The local stand-in for KServe's payload logger sends what KServe sends (binary-mode CloudEvents, one request and
one response event under the same id, the logger's extensions), and feedback goes to /feedback as JSON; the
replay's feedback events are its sampled clicks and orders. Checked against a capturing HTTP server, parsed with
the cloudevents SDK as a sink would."""
from __future__ import annotations

import contextlib
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from cloudevents.http import from_http

from monitoring.events.emit import EventPostError, PayloadLogger, post_feedback, sim_time
from monitoring.oracle import SlateOutcome
from monitoring.replay import feedback_events


@contextlib.contextmanager
def capturing_server(status: int = 200):
    received: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_logged_exchange_is_two_kserve_logger_cloudevents() -> None:
    with capturing_server() as (url, received):
        when = sim_time(14 * 86400 + 3600)
        PayloadLogger(url, "canary").log("4711", b'{"inputs": []}', b'{"outputs": []}', when, when + timedelta(milliseconds=9))
    events = [from_http(headers, body) for _, headers, body in received]
    assert [e["type"] for e in events] == ["org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"]
    assert {e["id"] for e in events} == {"4711"} and {e["endpoint"] for e in events} == {"canary"}
    assert {e["inferenceservicename"] for e in events} == {"onevision"} and events[0]["component"] == "predictor"
    assert all("ce-id" in {k.lower() for k in headers} for _, headers, _ in received)  # binary content mode
    data = events[1].data
    assert (json.loads(data) if isinstance(data, (bytes, str)) else data) == {"outputs": []} and events[0]["time"].startswith("1970-01-15T01:00:00")


def test_feedback_goes_to_the_sinks_feedback_path_and_refusals_are_named() -> None:
    with capturing_server() as (url, received):
        assert post_feedback(url, [{"event_id": "1:click:5", "request_id": "1", "item_id": 5, "kind": "click", "ts": 0.0}]) == 1
    assert received[0][0] == "/feedback" and json.loads(received[0][2])[0]["item_id"] == 5
    with capturing_server(status=400) as (url, _):
        with pytest.raises(EventPostError, match="HTTP 400"):
            post_feedback(url, [{"event_id": "x"}])


def test_the_replays_feedback_events_are_its_clicks_and_orders() -> None:
    clicked = np.array([[False, True, False], [False, False, False]])
    ordered = np.array([[False, True, False], [False, False, False]])
    outcome = SlateOutcome(clicked, ordered, np.zeros(2), np.zeros(2), np.zeros(2))
    events = feedback_events(np.array([10, 11]), np.array([5.0, 6.0]), np.array([[7, 8, 9], [1, 2, 3]]), outcome)
    assert [(e["request_id"], e["item_id"], e["kind"]) for e in events] == [("10", 8, "click"), ("10", 8, "order")]
    assert len({e["event_id"] for e in events}) == 2


def test_an_unknown_arm_is_refused() -> None:
    with pytest.raises(ValueError, match="arm must be one of"):
        PayloadLogger("http://127.0.0.1:1/", "treatment")
