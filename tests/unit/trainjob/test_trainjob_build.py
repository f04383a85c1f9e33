"""The TrainJob object is the Kubeflow SDK's own: built by its Kubernetes backend, valid against its models."""
from __future__ import annotations

import pytest
from kubeflow.trainer import CustomTrainerContainer
from kubeflow_trainer_api import models

from onevision.trainjob.build import build_trainjob, job_name, request, require_store_uri
from onevision.trainjob.config import TrainJobConfig

ARGS = ["train", "generator", "--world", "s3://b/world", "--encoder", "s3://b/enc", "--vrq", "s3://b/vrq",
        "--out", "s3://b/g1", "--stage", "1"]
SIZED = TrainJobConfig(nodes=2, procs_per_node=4, cpu="8", memory="32Gi", gpu=4, image="registry/onevision:1",
                       s3_endpoint="http://minio:9000", namespace="ml")


def test_the_body_round_trips_through_the_sdk_trainjob_model() -> None:
    body = build_trainjob(ARGS, SIZED)
    assert models.TrainerV1alpha1TrainJob.from_dict(body).to_dict() == body
    assert (body["apiVersion"], body["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert body["spec"]["runtimeRef"] == {"name": "torch-distributed", "kind": "ClusterTrainingRuntime"}


def test_the_trainer_carries_nodes_resources_image_and_the_same_command_under_torchrun() -> None:
    trainer = build_trainjob(ARGS, SIZED)["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["image"] == "registry/onevision:1"
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"}
    assert trainer["resourcesPerNode"]["requests"] == trainer["resourcesPerNode"]["limits"]
    command = trainer["command"]
    assert command[:3] == ["python", "-m", "torch.distributed.run"]
    assert command[command.index("--nproc-per-node") + 1] == "4" and "--standalone" not in command
    assert command[command.index("-m", 3):] == ["-m", "onevision.torchrun", *ARGS]
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"} in trainer["env"]


def test_the_node_container_gets_the_s3_credentials_from_the_secret() -> None:
    patches = build_trainjob(ARGS, SIZED)["spec"]["runtimePatches"]
    patch = models.TrainerV1alpha1RuntimePatch.from_dict(patches[0])
    node = patch.training_runtime_spec.template.spec.replicated_jobs[0]
    container = node.template.spec.template.spec.containers[0]
    assert (node.name, container.name) == ("node", "node")
    refs = {e.name: (e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key) for e in container.env}
    assert refs == {"AWS_ACCESS_KEY_ID": ("onevision-s3", "awsAccessKeyID"),
                    "AWS_SECRET_ACCESS_KEY": ("onevision-s3", "awsSecretAccessKey")}
    no_secret = build_trainjob(ARGS, TrainJobConfig(s3_secret=""))
    assert "runtimePatches" not in no_secret["spec"]


def test_no_gpu_requests_none_and_the_name_is_a_stable_dns_label() -> None:
    body = build_trainjob(ARGS, TrainJobConfig())
    assert "nvidia.com/gpu" not in body["spec"]["trainer"]["resourcesPerNode"]["limits"]
    name = body["metadata"]["name"]
    assert name == job_name(ARGS, TrainJobConfig()) and name.startswith("onevision-train-generator-") and len(name) <= 63
    assert job_name(ARGS[:-1] + ["2"], TrainJobConfig()) != name
    assert build_trainjob(ARGS, TrainJobConfig(name="mine"))["metadata"]["name"] == "mine"


def test_the_request_is_sdk_types_for_trainer_client_train() -> None:
    kwargs = request(ARGS, SIZED)
    assert isinstance(kwargs["trainer"], CustomTrainerContainer) and kwargs["trainer"].num_nodes == 2
    assert kwargs["runtime"].name == "torch-distributed"


def test_local_paths_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="world in the S3 store"):
        require_store_uri("/data/world", "world")
    with pytest.raises(ValueError, match="nodes must be at least 1"):
        TrainJobConfig(nodes=0)
