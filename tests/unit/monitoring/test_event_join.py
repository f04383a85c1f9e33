"""The sink's Parquet joined into the request log: one row per answered query with its slate, clicks and orders
from the feedback, duplicates (at-least-once delivery) counted once, a write in progress never read; the result
is a log that `ab compare` and `ReplayLog.load` take."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.compare import compare_arms
from monitoring.events.join import EventJoinError, join_events
from monitoring.replay import ReplayLog
from monitoring.rules import load_rules
from onevision.service.client import v1_request, v2_request
from onevision.world.render import encode_png

T0 = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


def image(seed: int) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8))


def v2_response(item_ids: list[list[int]], version: str) -> dict:
    b, k = len(item_ids), len(item_ids[0])
    return {"model_name": "onevision", "model_version": version, "outputs": [
        {"name": "item_ids", "datatype": "INT64", "shape": [b, k], "data": sum(item_ids, [])},
        {"name": "scores", "datatype": "FP32", "shape": [b, k], "data": [-0.1 * j for _ in range(b) for j in range(k)]},
        {"name": "sids", "datatype": "INT64", "shape": [b, k, 2], "data": [c for row in item_ids for i in row for c in (i % 3, i)]},
        {"name": "personalized", "datatype": "BOOL", "shape": [b], "data": [True] * b}]}


def write(root: Path, table: str, rows: list[dict], partition: str, name: str = "part-0.parquet") -> None:
    path = root / "events" / table / partition / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def exchange(rid: str, arm: str, version: str, minutes: int, body: dict, items: list[list[int]]) -> tuple[dict, dict]:
    common = {"request_id": rid, "inference_service": "onevision", "namespace": "onevision", "component": "predictor",
              "endpoint": "canary" if arm == "canary" else "default", "arm": arm, "model_version": version,
              "received_at": T0 + timedelta(minutes=minutes, seconds=1)}
    request = {**common, "event_id": f"{rid}:request", "event_time": T0 + timedelta(minutes=minutes),
               "body": json.dumps(body)}
    response = {**common, "event_id": f"{rid}:response", "event_time": T0 + timedelta(minutes=minutes, milliseconds=12),
                "body": json.dumps(v2_response(items, version))}
    return request, response


@pytest.fixture()
def sink(tmp_path: Path) -> Path:
    pairs = [
        exchange("r1", "control", "v3", 0, v2_request([image(1)], [7], 3), [[10, 11, 12]]),
        exchange("r2", "canary", "v4", 5, v2_request([image(2)], [8], 3), [[20, 21, 22]]),
        exchange("r3", "canary", "v4", 60 * 25, v2_request([image(3), image(4)], [9, 10], 2, nested=True),
                 [[30, 31], [40, 41]]),
    ]
    requests, responses = [p[0] for p in pairs], [p[1] for p in pairs]
    for row in requests:
        write(tmp_path, "requests", [row], f"arm={row['arm']}/model_version={row['model_version']}/hour=2026120109",
              f"part-{row['request_id']}.parquet")
    write(tmp_path, "requests", [requests[0]], "arm=control/model_version=v3/hour=2026120109", "part-again.parquet")
    write(tmp_path, "responses", responses, "arm=mixed/model_version=x/hour=2026120109")
    write(tmp_path, "responses", [responses[1]], "arm=canary/model_version=v4/hour=2026120109", ".part-9.parquet.tmp")
    feedback = [{"event_id": "f1", "request_id": "r2", "item_id": 21, "kind": "click", "event_time": T0, "received_at": T0},
                {"event_id": "f1", "request_id": "r2", "item_id": 21, "kind": "click", "event_time": T0, "received_at": T0},
                {"event_id": "f2", "request_id": "r2", "item_id": 21, "kind": "order", "event_time": T0, "received_at": T0},
                {"event_id": "f3", "request_id": "r3/1", "item_id": 41, "kind": "click", "event_time": T0, "received_at": T0}]
    write(tmp_path, "feedback", feedback, "hour=2026120109")
    return tmp_path


def test_each_answered_query_becomes_a_request_row_with_its_slate_and_feedback(sink: Path) -> None:
    log = join_events(sink)
    requests = log.requests.set_index("request_id")
    assert sorted(requests.index) == ["r1", "r2", "r3/0", "r3/1"]  # r1 once although delivered twice
    assert requests.loc["r2", "clicks"] == 1 and requests.loc["r2", "ordered"] == 1  # the duplicate click counted once
    assert requests.loc["r3/1", "clicked"] == 1 and requests.loc["r3/0", "clicked"] == 0
    assert requests.loc["r1", "arm"] == "control" and requests.loc["r2", "model"] == "v4"
    assert requests.loc["r3/0", "user_id"] == 9 and requests.loc["r3/0", "sid_prefix"] == 30 % 3
    assert list(requests["window"]) == [0, 0, 1, 1] and requests.loc["r2", "latency_ms"] == pytest.approx(12)
    assert requests["target_item_id"].eq(-1).all() and requests["expected_ctr"].isna().all()
    slots = log.impressions[log.impressions["request_id"] == "r2"]
    assert slots["item_id"].tolist() == [20, 21, 22] and slots["clicked"].tolist() == [0, 1, 0]


def test_the_joined_log_is_what_ab_compare_and_the_loader_read(sink: Path, tmp_path: Path) -> None:
    log = join_events(sink, categories={i: i % 3 for i in range(100)})
    assert log.requests["diversity"].tolist() == [3.0, 3.0, 2.0, 2.0]
    log.save(tmp_path / "joined")
    again = ReplayLog.load(tmp_path / "joined")
    comparison = compare_arms(again.requests, load_rules().comparison, expected_canary_share=0.5)
    assert comparison.metrics["ctr"].canary_n == 3 and comparison.metrics["ctr"].control_n == 1


def test_a_v1_payload_is_read_too(tmp_path: Path) -> None:
    request, response = exchange("a", "control", "v3", 0, v1_request([image(5)], [3], 2), [[1, 2]])
    response["body"] = json.dumps({"predictions": [{"items": [{"item_id": 1, "sid": [1, 1], "score": 0.0},
                                                             {"item_id": 2, "sid": [2, 2], "score": -1.0}]}]})
    write(tmp_path, "requests", [request], "arm=control/model_version=v3/hour=2026120109")
    write(tmp_path, "responses", [response], "arm=control/model_version=v3/hour=2026120109")
    assert join_events(tmp_path).requests["n_results"].tolist() == [2]


def test_no_events_and_unreadable_payloads_are_named(tmp_path: Path) -> None:
    with pytest.raises(EventJoinError, match="no logged requests and responses"):
        join_events(tmp_path)
    request, response = exchange("b", "control", "v3", 0, {"inputs": "nope"}, [[1]])
    write(tmp_path, "requests", [request], "arm=control/model_version=v3/hour=2026120109")
    write(tmp_path, "responses", [response], "arm=control/model_version=v3/hour=2026120109")
    with pytest.raises(EventJoinError, match="request b: its logged payload cannot be read"):
        join_events(tmp_path)


def test_the_joined_log_passes_the_gx_gate_and_a_broken_one_is_named(sink: Path, tmp_path: Path) -> None:
    from monitoring.events.validate import DataValidationError, validate_request_log

    log = join_events(sink)
    assert validate_request_log(log, tmp_path / "ok").success
    broken = ReplayLog(log.requests.assign(ordered=[1, 0, 0, 0], clicked=[0, 1, 0, 1]),
                       log.impressions.assign(request_id=log.impressions["request_id"].replace({"r1": "ghost"})),
                       log.meta)
    with pytest.raises(DataValidationError) as failed:
        validate_request_log(broken, tmp_path / "bad")
    lines = str(failed.value).splitlines()
    assert any(line.strip().startswith("requests.") and "clicked" in line and "ordered" in line for line in lines), lines
    assert any(line.strip().startswith("impressions.request_id") and "ghost" in line for line in lines), lines
