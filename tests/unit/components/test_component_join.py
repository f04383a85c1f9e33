from __future__ import annotations

from pathlib import Path

import pytest
from component_artifacts import artifact, metrics
from kfp import dsl

from components.join import join_events
from monitoring.replay import ReplayLog
from onevision.service.client import v2_request
from onevision.validation import DataValidationError
from tests.unit.monitoring.test_event_join import exchange, image, write


def sink_with(tmp_path: Path, pairs: list[tuple[dict, dict]]) -> Path:
    for n, (request, response) in enumerate(pairs):
        write(tmp_path, "requests", [request], f"arm={request['arm']}/model_version=v/hour=2026120109", f"part-{n}.parquet")
        write(tmp_path, "responses", [response], f"arm={request['arm']}/model_version=v/hour=2026120109", f"part-{n}.parquet")
    return tmp_path


def test_the_sinks_events_are_joined_gated_and_handed_to_the_report(tmp_path: Path) -> None:
    events = sink_with(tmp_path / "sink", [exchange("a", "control", "v3", 0, v2_request([image(1)], [1], 2), [[1, 2]]),
                                           exchange("b", "canary", "v4", 1, v2_request([image(2)], [2], 2), [[3, 4]])])
    log, scalars = artifact(dsl.Dataset, tmp_path / "log"), metrics(tmp_path / "metrics")
    outputs = join_events.python_func(str(events), log, scalars)
    assert outputs.log_uri == str(tmp_path / "log")
    joined = ReplayLog.load(outputs.log_uri)
    assert sorted(joined.requests["request_id"]) == ["a", "b"] and len(joined.impressions) == 4
    assert scalars.metadata["control.requests"] == 1.0 and log.metadata["canary.requests"] == 1.0
    assert (tmp_path / "log" / "validation" / "request_log_validation.json").is_file()


def test_a_log_that_breaks_the_contract_stops_the_step(tmp_path: Path) -> None:
    request, response = exchange("a", "treatment", "v3", 0, v2_request([image(1)], [1], 2), [[1, 2]])
    events = sink_with(tmp_path / "sink", [(request, response)])
    with pytest.raises((DataValidationError, ValueError), match="treatment"):
        join_events.python_func(str(events), artifact(dsl.Dataset, tmp_path / "log"), metrics(tmp_path / "m"))
