"""Send a pipeline to a Kubeflow Pipelines server: one run, or a recurring run (kfp.Client, imported lazily)."""
from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DRIFT_CRON = "0 0 * * * *"  # KFP cron has a seconds field: every hour, on the hour


@dataclass(frozen=True)
class Submitted:
    id: str  # run id, or recurring run id
    experiment: str
    pipeline: str


def make_client(host: str, namespace: str | None = None) -> Any:
    """A `kfp.Client` for `host` (tests replace this factory)."""
    import kfp

    return kfp.Client(host=host, namespace=namespace) if namespace else kfp.Client(host=host)


def _compiled(pipeline: str, directory: Path) -> Path:
    from pipelines.compile import compile_pipeline

    return compile_pipeline(pipeline, directory)


def submit_run(client: Any, pipeline: str, arguments: Mapping[str, Any], *, experiment: str,
               run_name: str | None = None, enable_caching: bool | None = None,
               namespace: str | None = None) -> Submitted:
    """Compile `pipeline` from the current code and start one run of it in `experiment`."""
    with tempfile.TemporaryDirectory(prefix="onevision-kfp-") as tmp:
        package = _compiled(pipeline, Path(tmp))
        result = client.create_run_from_pipeline_package(
            str(package), arguments=dict(arguments), run_name=run_name, experiment_name=experiment,
            namespace=namespace, enable_caching=enable_caching,
        )
    return Submitted(result.run_id, experiment, pipeline)


def schedule_run(client: Any, pipeline: str, arguments: Mapping[str, Any], *, experiment: str, job_name: str,
                 cron: str = DEFAULT_DRIFT_CRON, max_concurrency: int = 1,
                 namespace: str | None = None) -> Submitted:
    """Create a recurring run of `pipeline` (never cached, no catch-up of missed intervals)."""
    if len(cron.split()) != 6:
        raise ValueError(f"cron expression {cron!r} must have 6 fields (KFP's: second minute hour day month weekday)")
    found = client.create_experiment(name=experiment, namespace=namespace)  # returns the existing one if any
    with tempfile.TemporaryDirectory(prefix="onevision-kfp-") as tmp:
        package = _compiled(pipeline, Path(tmp))
        job = client.create_recurring_run(
            experiment_id=found.experiment_id, job_name=job_name, cron_expression=cron,
            max_concurrency=max_concurrency, no_catchup=True, params=dict(arguments),
            pipeline_package_path=str(package), enable_caching=False,
        )
    return Submitted(job.recurring_run_id, experiment, pipeline)
