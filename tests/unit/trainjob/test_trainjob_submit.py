"""Submitting, waiting and failing, against a TrainerClient-shaped fake (no cluster here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from onevision.trainjob.build import build_trainjob
from onevision.trainjob.config import TrainJobConfig
from onevision.trainjob.submit import TrainJobFailed, run_trainjob

ARGS = ["train", "encoder", "--world", "s3://b/world", "--out", "s3://b/enc"]
CONFIG = TrainJobConfig(poll_s=1, timeout_s=60)


def _job(status: str, *steps: tuple[str, str]) -> SimpleNamespace:
    return SimpleNamespace(status=status, steps=[SimpleNamespace(name=n, status=s) for n, s in steps])


@dataclass
class FakeCustomObjects:
    body: dict

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        assert (group, version, plural) == ("trainer.kubeflow.org", "v1alpha1", "trainjobs")
        return self.body


@dataclass
class FakeTrainerClient:
    statuses: list
    failed_body: dict | None = None
    trained: list = field(default_factory=list)

    def __post_init__(self):
        self.backend = SimpleNamespace(namespace="ml", custom_api=FakeCustomObjects(self.failed_body or {}))

    def get_runtime(self, name):
        from onevision.trainjob.build import request

        return request(ARGS, CONFIG)["runtime"]  # what the cluster's ClusterTrainingRuntime reads back as

    def train(self, runtime, trainer, options):
        self.trained.append((runtime, trainer, options))
        return "onevision-train-encoder-x"

    def wait_for_job_status(self, name, status, timeout, polling_interval, callbacks):
        assert status == {"Complete", "Failed"} and (timeout, polling_interval) == (60, 1)
        for job in self.statuses:
            for callback in callbacks:
                callback(job)
            if job.status in status:
                return job
        raise TimeoutError(name)

    def get_job_logs(self, name):
        return iter(["epoch 1", "Traceback (most recent call last):", "RuntimeError: CUDA out of memory"])


def test_a_completed_trainjob_is_reported_with_its_progress() -> None:
    client = FakeTrainerClient([_job("Created"), _job("Running", ("node-0", "Running")),
                                _job("Running", ("node-0", "Running")), _job("Complete", ("node-0", "Succeeded"))])
    lines: list[str] = []
    assert run_trainjob(ARGS, CONFIG, echo=lines.append, client=client) == "onevision-train-encoder-x"
    assert lines[1:] == ["TrainJob onevision-train-encoder-x: Created",
                         "TrainJob onevision-train-encoder-x: Running (node-0 Running)",
                         "TrainJob onevision-train-encoder-x: Complete (node-0 Succeeded)"]
    (runtime, trainer, options), = client.trained
    assert trainer.num_nodes == CONFIG.nodes and runtime.name == "torch-distributed"


def test_a_failed_trainjob_fails_with_its_own_condition_and_log_tail() -> None:
    body = build_trainjob(ARGS, CONFIG)
    body["metadata"].update(namespace="ml", creationTimestamp="2026-01-01T00:00:00Z")
    body["status"] = {"conditions": [
        {"type": "Created", "status": "True", "reason": "JobSetCreated", "message": "ok",
         "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "jobset failed: node-0 BackoffLimitExceeded",
         "lastTransitionTime": "2026-01-01T00:10:00Z"}]}
    client = FakeTrainerClient([_job("Running"), _job("Failed", ("node-0", "Failed"))], failed_body=body)
    with pytest.raises(TrainJobFailed, match="FailedJobs: jobset failed: node-0 BackoffLimitExceeded") as err:
        run_trainjob(ARGS, CONFIG, echo=lambda _: None, client=client)
    assert err.value.logs[-1] == "RuntimeError: CUDA out of memory" and "CUDA out of memory" in str(err.value)


def test_a_trainjob_that_never_ends_times_out() -> None:
    client = FakeTrainerClient([_job("Running")])
    with pytest.raises(TimeoutError):
        run_trainjob(ARGS, CONFIG, echo=lambda _: None, client=client)
