"""The TrainJob of one `onevision train ...` command, built by the Kubeflow SDK itself: the SDK's Kubernetes
backend runs `train()` with its API call recorded instead of sent, so `--dry-run` prints exactly the object
`TrainerClient.train` would create (every part of it made by the SDK's models), and a submit sends the same
request (`request`) through `TrainerClient`.

The nodes run the same command under torchrun (`onevision.torchrun`), with the processes per node on its
command line; the node count, node rank and master address come from the PET_* variables the
`torch-distributed` runtime sets. Artifacts move through S3: every input and the output are s3:// URIs.
"""
from __future__ import annotations

import hashlib
from typing import Any

from onevision.s3secret import ENDPOINT_ENV, SECRET_KEY_TO_ENV
from onevision.torchrun import launcher_args, rank_command
from onevision.trainjob.config import TrainJobConfig

NODE_CONTAINER = "node"  # the trainer container (and replicated job) of the torch-distributed runtime
LABELS = {"app.kubernetes.io/part-of": "onevision"}
NODE_PYTHON = "python"  # the image's interpreter


class NotInObjectStoreError(ValueError):
    """A TrainJob's node cannot read a local path: its artifacts must be in the S3 store."""


def require_store_uri(uri: str, what: str) -> str:
    if not uri.startswith("s3://"):
        raise NotInObjectStoreError(f"--trainer kubeflow needs the {what} in the S3 store (s3://bucket/prefix), "
                                    f"got {uri!r}: the TrainJob's nodes cannot read this machine's files")
    return uri


def node_command(args: list[str], config: TrainJobConfig) -> list[str]:
    """What each node runs: torchrun with `procs_per_node` ranks of `onevision ARGS`."""
    return rank_command(args, launcher_args(config.procs_per_node, nnodes=None), python=NODE_PYTHON)


def step_of(args: list[str]) -> str:
    """`train-generator` for `train generator --world ...`."""
    return "-".join(a for a in args[:2] if not a.startswith("-"))


def job_name(args: list[str], config: TrainJobConfig) -> str:
    """`config.name`, else `onevision-<step>-<hash>`: the same command and sizing give the same name."""
    if config.name:
        return config.name
    digest = hashlib.sha256(repr((args, config)).encode()).hexdigest()[:10]
    return f"onevision-{step_of(args)}-{digest}"[:63]


def request(args: list[str], config: TrainJobConfig, runtime: Any = None) -> dict[str, Any]:
    """The keyword arguments of `TrainerClient.train` for `onevision ARGS` on the cluster. `runtime`: the
    SDK's Runtime (from `TrainerClient.get_runtime`), else the ClusterTrainingRuntime `config.runtime`."""
    from kubeflow.trainer import CustomTrainerContainer, Runtime, RuntimeKind, RuntimeTrainer, TrainerType
    from kubeflow.trainer.options import (ContainerPatch, JobSetSpecPatch, JobSetTemplatePatch, JobSpecPatch,
                                          JobTemplatePatch, Labels, Name, PodSpecPatch, PodTemplatePatch,
                                          ReplicatedJobPatch, RuntimePatch, TrainerCommand, TrainingRuntimeSpecPatch)

    if runtime is None:
        runtime = Runtime(name=config.runtime, kind=RuntimeKind.CLUSTER_TRAINING_RUNTIME,
                          trainer=RuntimeTrainer(trainer_type=TrainerType.CUSTOM_TRAINER, framework="torch",
                                                 image=config.image))
    env = {ENDPOINT_ENV: config.s3_endpoint} if config.s3_endpoint else None
    trainer = CustomTrainerContainer(image=config.image, num_nodes=config.nodes,
                                     resources_per_node=config.resources_per_node(), env=env)
    options: list[Any] = [Name(job_name(args, config)), TrainerCommand(node_command(args, config)),
                          Labels({**LABELS, "app.kubernetes.io/component": step_of(args)})]
    if config.s3_secret:
        secret_env = [{"name": var, "valueFrom": {"secretKeyRef": {"name": config.s3_secret, "key": key}}}
                      for key, var in SECRET_KEY_TO_ENV.items()]
        pod = PodTemplatePatch(spec=PodSpecPatch(containers=[ContainerPatch(name=NODE_CONTAINER, env=secret_env)]))
        options.append(RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(template=JobSetTemplatePatch(
            spec=JobSetSpecPatch(replicated_jobs=[ReplicatedJobPatch(
                name=NODE_CONTAINER, template=JobTemplatePatch(spec=JobSpecPatch(template=pod)))])))))
    return {"runtime": runtime, "trainer": trainer, "options": options}


class _RecordedApi:
    """Stands in for kubernetes' CustomObjectsApi: keeps the body instead of sending it."""

    body: dict[str, Any] | None = None

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.body = body
        return body


def build_trainjob(args: list[str], config: TrainJobConfig, runtime: Any = None) -> dict[str, Any]:
    """The TrainJob body (a dict in the API's own field names) `TrainerClient.train(**request(...))` sends."""
    from kubeflow.trainer.backends.kubernetes.backend import KubernetesBackend

    class DryRunBackend(KubernetesBackend):
        def __init__(self) -> None:  # no kube-config, no cluster: only the API object is built
            self.namespace = config.namespace or "default"
            self.custom_api = _RecordedApi()

    backend = DryRunBackend()
    backend.train(**request(args, config, runtime))
    return backend.custom_api.body


def to_yaml(body: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(body, sort_keys=False)
