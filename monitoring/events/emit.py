"""Posting events to the event sink the way production does: `PayloadLogger` sends each served request and its
response as the two CloudEvents KServe's payload logger sends (binary content mode, `ce-id` the request id shared
by both, types `org.kubeflow.serving.inference.request` / `.response`, extensions `inferenceservicename`,
`namespace`, `component`, `endpoint` "default" | "canary", `recordedtime`, `metadata`; kserve pkg/logger/worker.go),
and `post_feedback` sends click / order events. A local replay of served arms (TorchServe or the kserve.Model
server, which have no payload logger of their own) uses them, so its logs reach the drift report through exactly
the path a cluster's do: sink -> Parquet -> join.
"""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from monitoring.events.schema import REQUEST_TYPE, RESPONSE_TYPE
from monitoring.http import opener_for

ENDPOINTS = {"control": "default", "canary": "canary"}  # KServe's endpoint extension: default or canary
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class EventPostError(RuntimeError):
    """The sink refused or could not be reached; the message has its status and reply."""


def _post(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> None:
    import urllib.error

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise EventPostError(f"POST {url} answered HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise EventPostError(f"POST {url} failed: {exc}") from exc


def sim_time(seconds: float) -> datetime:
    """A replay's simulated timestamp (seconds since the world's day 0) as an event time."""
    return EPOCH + timedelta(seconds=float(seconds))


@dataclass
class PayloadLogger:
    """KServe's logger for one arm of a local A/B: `log` posts the request and the response event."""

    sink_url: str
    arm: str  # "control" | "canary"
    inference_service: str = "onevision"
    namespace: str = "local"
    component: str = "predictor"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.arm not in ENDPOINTS:
            raise ValueError(f"arm must be one of {sorted(ENDPOINTS)}, got {self.arm!r}")
        self._opener = opener_for(self.sink_url)

    def log(self, request_id: str, request_body: bytes, response_body: bytes, requested: datetime,
            answered: datetime) -> None:
        from cloudevents.conversion import to_binary
        from cloudevents.http import CloudEvent

        source = f"http://{self.inference_service}-{self.component}.{self.namespace}/"
        for kind, body, when in ((REQUEST_TYPE, request_body, requested), (RESPONSE_TYPE, response_body, answered)):
            event = CloudEvent({
                "id": request_id, "type": kind, "source": source, "time": when.isoformat(),
                "recordedtime": datetime.now(timezone.utc).isoformat(), "inferenceservicename": self.inference_service,
                "namespace": self.namespace, "component": self.component, "endpoint": ENDPOINTS[self.arm],
                "metadata": "{}", "datacontenttype": "application/json",
            }, body)
            headers, data = to_binary(event)
            _post(self._opener, self.sink_url, dict(headers), data, self.timeout_s)


def post_feedback(sink_url: str, events: Sequence[dict], timeout_s: float = 10.0, chunk: int = 500) -> int:
    """POST click / order events (`event_id`, `request_id`, `item_id`, `kind`, `ts`) to the sink's /feedback;
    the number sent."""
    url = sink_url.rstrip("/") + "/feedback"
    opener = opener_for(url)
    for start in range(0, len(events), chunk):
        body = json.dumps(list(events[start:start + chunk])).encode()
        _post(opener, url, {"Content-Type": "application/json"}, body, timeout_s)
    return len(events)
