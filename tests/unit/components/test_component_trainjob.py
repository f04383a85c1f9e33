"""The training components with trainer="kubeflow": the step runs as a TrainJob on the artifacts' S3 URIs."""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from component_artifacts import metrics
from kfp import dsl

from components.encoder import train_encoder
from components.generator import train_generator
from onevision.s3secret import DEFAULT_SECRET
from onevision.trainjob import submit


class Stored(dsl.Model):
    """A KFP artifact in the pipeline's MinIO store, with its local path (the task's mount) under tmp."""

    def __init__(self, uri: str, local: Path):
        super().__init__(name=Path(uri).name, uri=uri, metadata={})
        self._local = str(local)

    @property
    def path(self) -> str:
        return self._local


class FakeClient:
    def __init__(self, status: str = "Complete"):
        self.status, self.submitted = status, []

    def get_runtime(self, name):
        return None  # request() then names the ClusterTrainingRuntime itself

    def train(self, runtime, trainer, options):
        self.submitted.append((trainer, options))
        return "onevision-train-x"

    def wait_for_job_status(self, name, status, timeout, polling_interval, callbacks):
        job = SimpleNamespace(status=self.status, steps=[])
        for callback in callbacks:
            callback(job)
        return job


@pytest.fixture
def client(monkeypatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(submit, "client_for", lambda config: fake)
    return fake


def _command(client: FakeClient) -> list[str]:
    (trainer, options), = client.submitted
    command = next(o.command for o in options if hasattr(o, "command"))
    return command[command.index("onevision.torchrun") + 1:]


def test_a_generator_stage_runs_as_a_trainjob_on_the_s3_uris(client: FakeClient, tmp_path: Path) -> None:
    store = "minio://mlpipeline/v2/artifacts/run"
    art = {n: Stored(f"{store}/{n}", tmp_path / n) for n in ("world", "encoder", "vrq", "g1", "g2")}
    out = metrics(tmp_path / "metrics")
    train_generator.python_func(art["world"], art["encoder"], art["vrq"], art["g2"], out, stage=2, init=art["g1"],
                                preset="tiny", config={"stage2_epochs": 3}, trainer="kubeflow",
                                trainjob={"nodes": 2, "procs_per_node": 4, "gpu": 4}, s3_endpoint="http://minio:9000")
    args = _command(client)
    s3 = "s3://mlpipeline/v2/artifacts/run"
    assert args[:2] == ["train", "generator"]
    for flag, value in (("--world", f"{s3}/world"), ("--init", f"{s3}/g1"), ("--out", f"{s3}/g2"), ("--stage", "2")):
        assert args[args.index(flag) + 1] == value
    assert json.loads(args[args.index("--config") + 1])["stage2_epochs"] == 3
    (trainer, _), = client.submitted
    assert trainer.num_nodes == 2 and trainer.env == {"AWS_ENDPOINT_URL": "http://minio:9000"}
    assert out.metadata["nodes"] == 2.0 and out.metadata["procs_per_node"] == 4.0 and out.metadata["stage"] == 2.0
    assert (tmp_path / "g2").is_dir()  # the (empty) output directory KFP uploads; the TrainJob wrote the store


def test_the_encoder_fails_with_the_trainjobs_error(monkeypatch, tmp_path: Path) -> None:
    fake = FakeClient(status="Failed")
    fake.backend = SimpleNamespace(namespace="ml", custom_api=SimpleNamespace(
        get_namespaced_custom_object=lambda *a: {"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "node-0 OOMKilled",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
    fake.get_job_logs = lambda name: iter([])
    monkeypatch.setattr(submit, "client_for", lambda config: fake)
    world, encoder = Stored("s3://b/world", tmp_path / "w"), Stored("s3://b/enc", tmp_path / "e")
    with pytest.raises(submit.TrainJobFailed, match="FailedJobs: node-0 OOMKilled"):
        train_encoder.python_func(world, encoder, metrics(tmp_path / "m"), preset="tiny", trainer="kubeflow")


def test_local_artifacts_and_unknown_trainers_are_refused(client: FakeClient, tmp_path: Path) -> None:
    world, encoder = Stored(str(tmp_path / "w"), tmp_path / "w"), Stored("s3://b/enc", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="needs artifact 'world' in the S3 store"):
        train_encoder.python_func(world, encoder, metrics(tmp_path / "m"), trainer="kubeflow")
    with pytest.raises(ValueError, match="unknown trainer 'slurm'"):
        train_encoder.python_func(world, encoder, metrics(tmp_path / "m"), trainer="slurm")
    assert client.submitted == []


@pytest.mark.parametrize("component", [train_encoder, train_generator])
def test_the_secret_default_is_the_projects(component) -> None:
    assert inspect.signature(component.python_func).parameters["s3_secret"].default == DEFAULT_SECRET
