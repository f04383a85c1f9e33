"""Create a TrainJob through the Kubeflow SDK's `TrainerClient`, wait for it with progress, and fail with the
TrainJob's own error (its Failed condition, and the last lines of node 0's log) when it fails."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onevision.trainjob.build import request
from onevision.trainjob.config import TrainJobConfig

COMPLETE, FAILED = "Complete", "Failed"  # the SDK's TrainJob statuses a wait ends on
LOG_TAIL = 20


class TrainJobFailed(RuntimeError):
    def __init__(self, name: str, condition: str, logs: list[str]):
        self.name, self.condition, self.logs = name, condition, logs
        tail = ("\n  last log lines of node-0:\n    " + "\n    ".join(logs)) if logs else ""
        super().__init__(f"TrainJob {name} failed: {condition}{tail}")


def client_for(config: TrainJobConfig) -> Any:
    """A TrainerClient on the Kubernetes backend (kube-config, or the pod's service account in-cluster)."""
    from kubeflow.trainer import KubernetesBackendConfig, TrainerClient

    return TrainerClient(KubernetesBackendConfig(namespace=config.namespace))


def submit(client: Any, args: list[str], config: TrainJobConfig) -> str:
    """Create the TrainJob of `onevision ARGS` against the cluster's runtime `config.runtime`; its name."""
    return client.train(**request(args, config, client.get_runtime(config.runtime)))


def progress_printer(name: str, echo: Callable[[str], None]) -> Callable[[Any], None]:
    """A wait callback that prints the TrainJob's status and its steps' whenever they change."""
    last: list[str] = []

    def show(job: Any) -> None:
        steps = ", ".join(f"{s.name} {s.status}" for s in job.steps)
        line = f"TrainJob {name}: {job.status}" + (f" ({steps})" if steps else "")
        if last[-1:] != [line]:
            last.append(line)
            echo(line)
    return show


def failure_condition(client: Any, name: str) -> str:
    """`reason: message` of the TrainJob's Failed condition, read from its status through the SDK's client."""
    from kubeflow.trainer.constants import constants
    from kubeflow_trainer_api import models

    backend = client.backend
    try:
        body = backend.custom_api.get_namespaced_custom_object(constants.GROUP, constants.VERSION, backend.namespace,
                                                               constants.TRAINJOB_PLURAL, name)
    except Exception as exc:  # noqa: BLE001 - the failure is reported either way
        return f"status unreadable ({type(exc).__name__}: {exc})"
    status = models.TrainerV1alpha1TrainJob.from_dict(body).status
    for c in (status.conditions if status else None) or []:
        if c.type == FAILED and c.status == "True":
            return f"{c.reason}: {c.message}" if c.reason else c.message
    return "the TrainJob reports Failed without a Failed condition"


def log_tail(client: Any, name: str, lines: int = LOG_TAIL) -> list[str]:
    try:
        return list(client.get_job_logs(name))[-lines:]
    except Exception:  # noqa: BLE001 - logs are a courtesy; the condition is the error
        return []


def wait(client: Any, name: str, config: TrainJobConfig, echo: Callable[[str], None]) -> Any:
    """Block until the TrainJob completes (returned) or fails (TrainJobFailed); TimeoutError past timeout_s."""
    job = client.wait_for_job_status(name, status={COMPLETE, FAILED}, timeout=config.timeout_s,
                                     polling_interval=config.poll_s, callbacks=[progress_printer(name, echo)])
    if job.status == FAILED:
        raise TrainJobFailed(name, failure_condition(client, name), log_tail(client, name))
    return job


def run_trainjob(args: list[str], config: TrainJobConfig, echo: Callable[[str], None] = print,
                 client: Any = None) -> str:
    """Submit `onevision ARGS` as a TrainJob and wait for it; its name once it completed."""
    client = client if client is not None else client_for(config)
    name = submit(client, args, config)
    echo(f"TrainJob {name} created: {config.nodes} node(s) x {config.procs_per_node} process(es), "
         f"runtime {config.runtime}, image {config.image}")
    wait(client, name, config, echo)
    return name
