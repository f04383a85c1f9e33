"""CPU and memory requests/limits of every pipeline step (Kubernetes quantities)."""
from __future__ import annotations

from dataclasses import dataclass

from kfp.dsl import PipelineTask


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    def apply(self, task: PipelineTask) -> PipelineTask:
        return (task.set_cpu_request(self.cpu_request).set_cpu_limit(self.cpu_limit)
                .set_memory_request(self.memory_request).set_memory_limit(self.memory_limit))


SMALL = Resources("250m", "500m", "256Mi", "512Mi")
IO = Resources("500m", "1", "1Gi", "2Gi")
DATA = Resources("1", "2", "2Gi", "4Gi")
TRAIN = Resources("2", "4", "4Gi", "8Gi")

# Keyed by component name (the task name of a step's first use).
STEP_RESOURCES: dict[str, Resources] = {
    "ingest-world": DATA,
    "validate-data": DATA,
    "train-encoder": TRAIN,
    "train-vrq": DATA,
    "train-cascade": TRAIN,
    "train-generator": TRAIN,
    "package-bundle": IO,
    "evaluate-model": DATA,
    "parity-gate": SMALL,
    "gate-failure-report": SMALL,
    "build-archive": IO,
    "deploy-canary": IO,
    "drift-report": DATA,
    "join-events": DATA,
    "materialize-features": IO,
    "fetch-bundle": IO,
    "new-catalogue-rows": DATA,
    "refresh-catalogue": TRAIN,
    "evaluate-listing": DATA,
    "refresh-gate": SMALL,
}


def with_resources(task: PipelineTask) -> PipelineTask:
    """Apply the step's resources, looked up by the task's component name."""
    name = task.component_spec.name
    if name not in STEP_RESOURCES:
        raise KeyError(f"no resources declared for step {name!r}; add it to STEP_RESOURCES")
    return STEP_RESOURCES[name].apply(task)
