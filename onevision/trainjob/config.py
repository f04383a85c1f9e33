"""What a TrainJob asks the cluster for. Dataclasses only: the CLI's defaults read it without the SDK."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from onevision.image import image
from onevision.s3secret import DEFAULT_SECRET

TRAINERS = ("local", "kubeflow")
RUNTIME = "torch-distributed"  # the ClusterTrainingRuntime the TrainJob references (docs/training.md)


@dataclass(frozen=True)
class TrainJobConfig:
    nodes: int = 1
    procs_per_node: int = 1  # torchrun ranks per node: CPU processes, or one per GPU
    cpu: str = "2"  # per node, requests = limits (Kubernetes quantities)
    memory: str = "8Gi"
    gpu: int = 0  # nvidia.com/gpu per node; > 0 trains with nccl instead of gloo
    image: str = field(default_factory=image)  # the project image ($ONEVISION_IMAGE)
    runtime: str = RUNTIME
    namespace: str | None = None  # None: the SDK's default (the current context's, or the pod's own)
    name: str | None = None  # None: onevision-<step>-<hash of the command and sizing>
    s3_endpoint: str = ""  # AWS_ENDPOINT_URL of the nodes (MinIO); empty for AWS
    s3_secret: str = DEFAULT_SECRET  # Secret with the nodes' S3 credentials; empty: none mounted
    timeout_s: int = 6 * 3600  # how long to wait for the TrainJob to finish
    poll_s: int = 10

    def __post_init__(self) -> None:
        for name in ("nodes", "procs_per_node"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainJob {name} must be at least 1, got {getattr(self, name)}")
        if self.gpu < 0:
            raise ValueError(f"TrainJob gpu must be 0 or more, got {self.gpu}")
        if not 0 < self.poll_s < self.timeout_s:
            raise ValueError(f"TrainJob poll_s must be in (0, timeout_s={self.timeout_s}), got {self.poll_s}")

    def resources_per_node(self) -> dict[str, str | int]:
        """The SDK's `resources_per_node` form ("gpu" is its alias of nvidia.com/gpu)."""
        return {"cpu": self.cpu, "memory": self.memory, **({"gpu": str(self.gpu)} if self.gpu else {})}

    def replace(self, **changes: object) -> TrainJobConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
