"""The event sink as a real server (`python -m monitoring.events serve` on 127.0.0.1): good events land in
partitioned Parquet once, bad ones get a 4xx naming the problem, a kill -9 loses only the unflushed batch and
leaves no torn file, and the same code writes to S3 (moto)."""
from __future__ import annotations

import json
import re
import signal
import time
import uuid
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import requests

from monitoring.events.local import running_sink, start_sink, stop_sink
from monitoring.events.schema import FEEDBACK_SCHEMA, PAYLOAD_SCHEMA, REQUEST_TYPE, RESPONSE_TYPE
from s3_server import moto_s3, s3_env  # noqa: F401 - moto_s3 is a fixture

pytestmark = pytest.mark.integration
CLEAN_EXIT = {0, -signal.SIGTERM}  # uvicorn re-raises SIGTERM after its graceful shutdown (and our flush)
HTTP = requests.Session()
HTTP.trust_env = False  # never through a proxy: the server is on 127.0.0.1


def ce_headers(event_id: str, ce_type: str = REQUEST_TYPE, **extra: str) -> dict[str, str]:
    """The headers KServe's agent sends (binary mode)."""
    return {"ce-id": event_id, "ce-type": ce_type, "ce-source": "onevision-predictor-7d9f-x2", "ce-specversion": "1.0",
            "ce-time": "2024-05-01T12:00:00.5Z", "ce-inferenceservicename": "onevision", "ce-namespace": "onevision-dev",
            "ce-component": "predictor", "ce-endpoint": "", "ce-metadata": "{}", "content-type": "application/json",
            **extra}


def post_request(url: str, event_id: str, arm: str = "control") -> requests.Response:
    return HTTP.post(f"{url}/?arm={arm}", data=json.dumps({"inputs": [{"name": "query", "data": [event_id]}]}),
                     headers=ce_headers(event_id), timeout=10)


def post_response(url: str, event_id: str, arm: str = "control", version: str = "v3") -> requests.Response:
    body = {"model_name": "generator", "model_version": version, "id": event_id, "outputs": []}
    return HTTP.post(f"{url}/?arm={arm}", data=json.dumps(body), headers=ce_headers(event_id, RESPONSE_TYPE), timeout=10)


def click(event_id: str, request_id: str, kind: str = "click") -> dict:
    return {"event_id": event_id, "request_id": request_id, "item_id": 17, "kind": kind, "ts": "2024-05-01T12:00:03Z"}


def metric(url: str, name: str, **labels: str) -> float:
    text = HTTP.get(f"{url}/metrics", timeout=10).text
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{selector}}}" if labels else name) + r" ([0-9.e+]+)"
    found = re.search(r"^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


def read(root: Path, table: str):
    return ds.dataset(root / "events" / table, format="parquet")


def test_good_events_land_once_in_their_partitions(tmp_path):
    with running_sink(str(tmp_path), "--flush-seconds", "60") as (url, process):
        for event_id in ("r1", "r2"):
            assert post_request(url, event_id).status_code == 200
        assert post_request(url, "r1").json() == {"accepted": 0, "duplicates": 1}  # at-least-once redelivery
        assert post_response(url, "r1").json() == {"accepted": 1, "duplicates": 0}  # same ce-id, other table
        assert post_request(url, "c1", arm="canary").status_code == 200
        assert post_response(url, "c1", arm="canary", version="v4").status_code == 200
        batch = [click("f1", "r1"), click("f2", "r1", "order"), click("f1", "r1")]
        assert HTTP.post(f"{url}/feedback", json=batch, timeout=10).json() == {"accepted": 2, "duplicates": 1}
        assert metric(url, "onevision_events_duplicates_total", table="requests") == 1
        assert stop_sink(process) in CLEAN_EXIT  # SIGTERM flushes the batch

    parts = sorted(p.relative_to(tmp_path / "events").parent.as_posix() for p in tmp_path.rglob("*.parquet"))
    assert parts == ["feedback/hour=2024050112",
                     "requests/arm=canary/model_version=unknown/hour=2024050112",
                     "requests/arm=control/model_version=unknown/hour=2024050112",
                     "responses/arm=canary/model_version=v4/hour=2024050112",
                     "responses/arm=control/model_version=v3/hour=2024050112"]
    requests_table = read(tmp_path, "requests").to_table()
    assert requests_table.schema.equals(PAYLOAD_SCHEMA)
    assert sorted(requests_table.column("event_id").to_pylist()) == ["c1", "r1", "r2"]
    row = requests_table.filter(ds.field("event_id") == "r1").to_pylist()[0]
    assert (row["request_id"], row["arm"], row["inference_service"], row["namespace"]) == ("r1", "control", "onevision", "onevision-dev")
    assert json.loads(row["body"]) == {"inputs": [{"name": "query", "data": ["r1"]}]}
    responses = read(tmp_path, "responses").to_table()
    assert sorted(zip(responses.column("request_id").to_pylist(), responses.column("arm").to_pylist())) == [
        ("c1", "canary"), ("r1", "control")]
    feedback = read(tmp_path, "feedback").to_table()
    assert feedback.schema.equals(FEEDBACK_SCHEMA)
    assert sorted(zip(feedback.column("event_id").to_pylist(), feedback.column("kind").to_pylist())) == [
        ("f1", "click"), ("f2", "order")]


def bad_events() -> dict[str, tuple[str, dict, bytes, str]]:
    """reason -> (path, headers, body, text the answer must contain)."""
    good = ce_headers("bad")
    without = lambda name: {k: v for k, v in good.items() if k != name}  # noqa: E731
    feedback = lambda **o: ("/feedback", {"content-type": "application/json"}, json.dumps({**click("f", "r"), **o}).encode())  # noqa: E731
    drop = lambda name: ("/feedback", {}, json.dumps({k: v for k, v in click("f", "r").items() if k != name}).encode())  # noqa: E731
    return {
        "missing_id": ("/", without("ce-id"), b"{}", "ce-id"),
        "missing_type": ("/", without("ce-type"), b"{}", "ce-type"),
        "missing_source": ("/", without("ce-source"), b"{}", "ce-source"),
        "missing_specversion": ("/", without("ce-specversion"), b"{}", "ce-specversion"),
        "bad_specversion": ("/", {**good, "ce-specversion": "0.3"}, b"{}", "0.3"),
        "unknown_type": ("/", {**good, "ce-type": "com.example.click"}, b"{}", "com.example.click"),
        "body_not_json": ("/", good, b"<html>", "not JSON"),
        "empty_body": ("/", good, b"", "no data"),
        "bad_time": ("/", {**good, "ce-time": "tomorrow"}, b"{}", "ce-time"),
        "structured_not_json": ("/", {"content-type": "application/cloudevents+json"}, b"{", "not JSON"),
        "bad_arm": ("/?arm=blue", good, b"{}", "arm='blue'"),
        "body_too_large": ("/", good, b"[" + b"0," * 40_000 + b"0]", "at most"),
        "missing_request_id": (*drop("request_id"), "request_id"),
        "wrong_type": (*feedback(item_id="17"), "item_id"),
        "bad_kind": (*feedback(kind="view"), "view"),
        "not_an_object": ("/feedback", {}, b'["click"]', "JSON object"),
    }


def test_a_malformed_event_barrage_gets_4xx_each_and_the_sink_keeps_storing(tmp_path):
    cases = bad_events()
    rounds = 20  # 16 classes x 20 = 320 bad events
    with running_sink(str(tmp_path), "--flush-seconds", "60", "--max-body-bytes", "65536") as (url, process):
        for _ in range(rounds):
            for reason, (path, headers, body, named) in cases.items():
                answer = HTTP.post(url + path, data=body, headers=headers, timeout=10)
                assert 400 <= answer.status_code < 500, (reason, answer.status_code, answer.text)
                assert answer.json()["error"] == reason and named in answer.json()["detail"], (reason, answer.text)
        for reason in cases:
            assert metric(url, "onevision_events_rejected_total", reason=reason) == rounds, reason
        assert post_request(url, "after-the-storm").status_code == 200
        assert HTTP.get(f"{url}/healthz", timeout=10).status_code == 200 and process.poll() is None
        assert stop_sink(process) in CLEAN_EXIT
    assert read(tmp_path, "requests").to_table().column("event_id").to_pylist() == ["after-the-storm"]


def test_a_kill_9_mid_batch_loses_only_the_unflushed_batch_and_no_row_is_torn_or_doubled(tmp_path):
    flags = ("--flush-rows", "100", "--flush-seconds", "3600")
    url, process = start_sink(str(tmp_path), *flags)
    try:
        flushed = [f"a{i}" for i in range(100)]  # exactly flush-rows: the flusher writes them
        assert HTTP.post(f"{url}/feedback", json=[click(e, "r") for e in flushed], timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while metric(url, "onevision_events_flushed_total", table="feedback") < 100:
            assert time.monotonic() < deadline, "the first batch was not flushed"
            time.sleep(0.05)
        unflushed = [f"b{i}" for i in range(60)]  # acknowledged, still in memory
        assert HTTP.post(f"{url}/feedback", json=[click(e, "r") for e in unflushed], timeout=10).status_code == 200
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop_sink(process)
    (tmp_path / "events/feedback/hour=2024050112" / f".part-{uuid.uuid4().hex}.parquet.x.tmp").write_bytes(b"PAR1 torn")

    dataset = read(tmp_path, "feedback")  # a reader sees whole parts only; the crash's temp file is skipped
    assert not [f for f in dataset.files if Path(f).name.startswith(".")]
    assert sorted(dataset.to_table().column("event_id").to_pylist()) == sorted(flushed)

    with running_sink(str(tmp_path), *flags) as (url, process):  # the producer redelivers what was not acknowledged as stored
        assert HTTP.post(f"{url}/feedback", json=[click(e, "r") for e in unflushed], timeout=10).json()["accepted"] == 60
        assert stop_sink(process) in CLEAN_EXIT
    ids = read(tmp_path, "feedback").to_table().column("event_id").to_pylist()
    assert sorted(ids) == sorted(flushed + unflushed) and len(ids) == len(set(ids))


def test_the_sink_writes_the_same_partitions_to_s3(moto_s3, monkeypatch):  # noqa: F811
    import boto3

    bucket = moto_s3.create_bucket("onevision-logs")
    s3_env(monkeypatch, moto_s3.endpoint_url)
    env = {k: v for k, v in __import__("os").environ.items() if k.startswith("AWS_") or k in ("NO_PROXY", "no_proxy")}
    with running_sink(f"s3://{bucket}/live", "--flush-seconds", "60", env=env) as (url, process):
        assert post_request(url, "s1").status_code == 200 and post_response(url, "s1").status_code == 200
        assert HTTP.post(f"{url}/feedback", json=click("f1", "s1"), timeout=10).status_code == 200
        assert stop_sink(process) in CLEAN_EXIT
    client = boto3.client("s3")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="live/")["Contents"])
    assert [k.rsplit("/", 1)[0] for k in keys] == ["live/events/feedback/hour=2024050112",
                                                   "live/events/requests/arm=control/model_version=unknown/hour=2024050112",
                                                   "live/events/responses/arm=control/model_version=v3/hour=2024050112"]
    from onevision.storage import open_store

    store = open_store(f"s3://{bucket}/live")
    table = ds.dataset(store.local_path("events/responses"), format="parquet").to_table()
    assert table.schema.equals(PAYLOAD_SCHEMA) and table.column("request_id").to_pylist() == ["s1"]
