"""Event throughput of the sink (`onevision events serve`) on 127.0.0.1: N KServe logger CloudEvents
(binary mode, request + response pairs, ~300-byte v2 bodies) posted by C concurrent clients, then N feedback
events in JSON batches; the sink writes Parquet to a temporary local store with its default flush settings.
Prints events/s for each and the rows found on disk (they must equal the events sent).

    python bench/event_sink_throughput.py --events 20000 --clients 4
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.dataset as ds
import requests
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from monitoring.events.local import running_sink, stop_sink  # noqa: E402
from monitoring.events.schema import REQUEST_TYPE, RESPONSE_TYPE  # noqa: E402

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _headers(event_id: str, ce_type: str) -> dict[str, str]:
    return {"ce-id": event_id, "ce-type": ce_type, "ce-source": "bench", "ce-specversion": "1.0",
            "ce-time": "2024-05-01T12:00:00Z", "ce-inferenceservicename": "onevision", "ce-namespace": "bench",
            "ce-component": "predictor", "ce-endpoint": "", "content-type": "application/json"}


def _post_logger_events(url: str, ids: list[str]) -> None:
    session = requests.Session()
    session.trust_env = False
    body = json.dumps({"inputs": [{"name": "user_id", "shape": [1], "datatype": "INT64", "data": [7]},
                                  {"name": "query", "shape": [1], "datatype": "BYTES", "data": ["red sneakers " * 10]}]})
    for event_id in ids:
        ce_type = REQUEST_TYPE if event_id.endswith("q") else RESPONSE_TYPE
        answer = session.post(f"{url}/?arm=control", data=body, headers=_headers(event_id[:-1], ce_type), timeout=30)
        answer.raise_for_status()


def _post_feedback(url: str, batches: list[list[dict]]) -> None:
    session = requests.Session()
    session.trust_env = False
    for batch in batches:
        session.post(f"{url}/feedback", json=batch, timeout=30).raise_for_status()


def _timed(clients: int, work, chunks) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, chunks))
    return time.perf_counter() - began


@app.command()
def main(events: int = typer.Option(20000, help="Logger events to post (half requests, half responses)."),
         clients: int = typer.Option(4, help="Concurrent HTTP clients."),
         feedback_batch: int = typer.Option(100, help="Feedback events per POST /feedback.")) -> None:
    ids = [f"r{i // 2}{'q' if i % 2 == 0 else 's'}" for i in range(events)]
    feedback = [{"event_id": f"f{i}", "request_id": f"r{i}", "item_id": i, "kind": "click", "ts": 1714564800 + i}
                for i in range(events)]
    batches = [feedback[i:i + feedback_batch] for i in range(0, events, feedback_batch)]
    with tempfile.TemporaryDirectory(prefix="sink-bench-") as store:
        with running_sink(store) as (url, process):
            logger_s = _timed(clients, lambda chunk: _post_logger_events(url, chunk), [ids[c::clients] for c in range(clients)])
            feedback_s = _timed(clients, lambda chunk: _post_feedback(url, chunk), [batches[c::clients] for c in range(clients)])
            stop_sink(process)
        stored = {t: ds.dataset(Path(store) / "events" / t, format="parquet").count_rows()
                  for t in ("requests", "responses", "feedback")}
    print(f"logger CloudEvents: {events} in {logger_s:.2f}s = {events / logger_s:,.0f} events/s ({clients} clients)")
    print(f"feedback (batches of {feedback_batch}): {events} in {feedback_s:.2f}s = {events / feedback_s:,.0f} events/s")
    print(f"rows on disk: {stored}")


if __name__ == "__main__":
    app()
