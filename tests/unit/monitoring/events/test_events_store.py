"""Buffering, de-duplication and the Parquet parts a flush writes (schema, partitions, atomicity)."""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.dataset as ds
import pytest

from monitoring.events.buffer import EventBuffer
from monitoring.events.schema import FEEDBACK_SCHEMA, PAYLOAD_SCHEMA
from monitoring.events.sink import EventSink, SinkConfig
from onevision.storage import LocalStore

T = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def payload_row(event_id: str, arm: str = "control", version: str = "v3", hour: int = 12) -> dict:
    return {"event_id": event_id, "request_id": event_id, "inference_service": "onevision", "namespace": "ns",
            "component": "predictor", "endpoint": "", "arm": arm, "model_version": version,
            "event_time": T.replace(hour=hour), "received_at": T, "body": "{}"}


def test_the_buffer_stores_an_event_id_once_per_table():
    buffer = EventBuffer()
    assert buffer.add("requests", [payload_row("a"), payload_row("a"), payload_row("b")]) == (2, 1)
    assert buffer.add("responses", [payload_row("a")]) == (1, 0)  # KServe: a response shares its request's ce-id
    assert buffer.add("requests", [payload_row("b")]) == (0, 1)
    assert {t: [r["event_id"] for r in rows] for t, rows in buffer.take().items()} == {
        "requests": ["a", "b"], "responses": ["a"]}
    assert len(buffer) == 0 and buffer.add("requests", [payload_row("a")]) == (0, 1)


def test_the_buffer_forgets_the_oldest_ids_beyond_its_capacity():
    buffer = EventBuffer(dedupe_capacity=2)
    buffer.add("requests", [payload_row("a"), payload_row("b"), payload_row("c")])
    assert buffer.add("requests", [payload_row("a")]) == (1, 0)


class FailingOnce(LocalStore):
    def __init__(self, root):
        super().__init__(root)
        self.failures = 1

    def put_bytes(self, key, data):
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        super().put_bytes(key, data)


def test_a_flush_writes_one_part_per_partition_with_the_schema(tmp_path):
    sink = EventSink(SinkConfig(store=str(tmp_path)))
    sink.buffer.add("requests", [payload_row("a"), payload_row("b", "canary", "v4"), payload_row("c", hour=13)])
    sink.buffer.add("feedback", [{"event_id": "f", "request_id": "a", "item_id": 7, "kind": "click",
                                  "event_time": T, "received_at": T}])
    assert sink.flush() == 4
    files = sorted(p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == ["events/feedback/hour=2024050112",
                     "events/requests/arm=canary/model_version=v4/hour=2024050112",
                     "events/requests/arm=control/model_version=v3/hour=2024050112",
                     "events/requests/arm=control/model_version=v3/hour=2024050113"]
    requests = ds.dataset(tmp_path / "events/requests", format="parquet")
    assert requests.schema.equals(PAYLOAD_SCHEMA) and requests.count_rows() == 3
    assert ds.dataset(tmp_path / "events/feedback", format="parquet").schema.equals(FEEDBACK_SCHEMA)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_rows_of_a_failed_flush_stay_buffered_and_are_written_once_later(tmp_path):
    sink = EventSink(SinkConfig(store=str(tmp_path)), store=FailingOnce(tmp_path))
    sink.buffer.add("requests", [payload_row("a"), payload_row("b", hour=13)])
    assert sink.flush() == 0 and len(sink.buffer) == 2
    assert sink.flush() == 2 and len(sink.buffer) == 0
    table = ds.dataset(tmp_path / "events", format="parquet").to_table()
    assert sorted(table.column("event_id").to_pylist()) == ["a", "b"]


@pytest.mark.parametrize("field,value", [("flush_rows", 0), ("flush_seconds", 0.0), ("max_body_bytes", 0)])
def test_a_config_out_of_range_is_refused_by_name(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        SinkConfig(store=str(tmp_path), **{field: value})


def test_the_serve_commands_defaults_are_the_sink_configs() -> None:
    """The CLI cannot import SinkConfig at module level (it loads pyarrow for `onevision --help`), so its option
    defaults are literals; they are checked against the one definition here."""
    import dataclasses
    import inspect

    from monitoring.events.arms import ArmMapping
    from monitoring.events.cli import serve

    options = {name: p.default for name, p in inspect.signature(serve).parameters.items()}
    for field in dataclasses.fields(SinkConfig):
        if field.name in options and field.default is not dataclasses.MISSING:
            assert options[field.name] == field.default, field.name
    assert options["arm_extension"] == ArmMapping.extension and tuple(options["canary_value"]) == ArmMapping.canary_values
