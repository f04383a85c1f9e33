"""`onevision pipeline submit|schedule|run` argument handling, against a fake kfp.Client."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipelines import submit as kfp_submit
from pipelines.cli import parse_params, pipeline_app


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _package(self, path: str) -> dict:
        return next(yaml.safe_load_all(Path(path).read_text()))

    def create_run_from_pipeline_package(self, pipeline_file: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("run", {"pipeline": self._package(pipeline_file)["pipelineInfo"]["name"], **kwargs}))
        return SimpleNamespace(run_id="run-1")

    def create_experiment(self, name: str, namespace: str | None = None) -> SimpleNamespace:
        self.calls.append(("experiment", {"name": name}))
        return SimpleNamespace(experiment_id="exp-7")

    def create_recurring_run(self, pipeline_package_path: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("recurring", {"pipeline": self._package(pipeline_package_path)["pipelineInfo"]["name"],
                                         **kwargs}))
        return SimpleNamespace(recurring_run_id="rr-3")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(kfp_submit, "make_client", lambda host, namespace=None: fake)
    return fake


def test_parse_params_reads_json_values_and_keeps_plain_strings() -> None:
    assert parse_params(["epsilon=0.05", "encoder_config={\"epochs\": 2}", "data_uri=s3://b/w"]) == {
        "epsilon": 0.05, "encoder_config": {"epochs": 2}, "data_uri": "s3://b/w"}


def test_submit_sends_the_compiled_train_pipeline_with_the_flags(client: FakeClient) -> None:
    result = CliRunner().invoke(pipeline_app, [
        "submit", "--host", "http://127.0.0.1:1", "--experiment", "nightly", "--epsilon", "0.05",
        "--encoder-config", "{\"epochs\": 2}", "--data-uri", "s3://onevision-data/worlds/v1"])
    assert result.exit_code == 0, result.output
    (kind, call), = client.calls
    assert (kind, call["pipeline"], call["experiment_name"]) == ("run", "onevision-train", "nightly")
    assert call["arguments"] == {"epsilon": 0.05, "encoder_config": {"epochs": 2},
                                 "data_uri": "s3://onevision-data/worlds/v1"}
    assert "run-1" in result.output


def test_submit_rejects_a_config_flag_that_is_not_a_json_object(client: FakeClient) -> None:
    result = CliRunner().invoke(pipeline_app, ["submit", "--host", "http://127.0.0.1:1", "--vrq-config", "[1, 2]"])
    assert result.exit_code == 2
    assert "--vrq-config must be a JSON object" in result.output
    assert client.calls == []


def test_schedule_creates_an_hourly_uncached_drift_run(client: FakeClient) -> None:
    result = CliRunner().invoke(pipeline_app, ["schedule", "--host", "http://127.0.0.1:1",
                                               "-p", "current_uri=s3://onevision-logs/requests"])
    assert result.exit_code == 0, result.output
    experiment, (kind, call) = client.calls
    assert experiment == ("experiment", {"name": "onevision-monitoring"})
    assert (kind, call["pipeline"], call["experiment_id"]) == ("recurring", "onevision-drift", "exp-7")
    assert (call["cron_expression"], call["enable_caching"], call["no_catchup"]) == ("0 0 * * * *", False, True)
    assert call["params"] == {"current_uri": "s3://onevision-logs/requests"}


def test_schedule_rejects_a_five_field_cron(client: FakeClient) -> None:
    result = CliRunner().invoke(pipeline_app, ["schedule", "--host", "http://127.0.0.1:1", "--cron", "0 * * * *"])
    assert result.exit_code == 2
    assert "must have 6 fields" in result.output


def test_run_without_local_points_at_submit() -> None:
    result = CliRunner().invoke(pipeline_app, ["run"])
    assert result.exit_code == 2
    assert "onevision pipeline submit" in result.output


def test_compile_writes_both_pipelines(tmp_path: Path) -> None:
    result = CliRunner().invoke(pipeline_app, ["compile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onevision-drift.yaml", "onevision-refresh.yaml",
                                                          "onevision-train.yaml"]
