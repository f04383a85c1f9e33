"""What a training component does with ``trainer="kubeflow"``: run its step as a Kubeflow Trainer TrainJob.

The task submits `onevision train ...` with its artifacts' store URIs and its whole step config (``--config``),
waits for the TrainJob (its progress in the task's log) and fails with the TrainJob's own error. The nodes read
the inputs from, and rank 0 writes the output to, the pipeline's S3 store (MinIO: ``minio://`` is its S3 name).
The task's service account needs to create and get TrainJobs in the namespace (docs/training.md).
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

from components.runtime import ArtifactLike, MissingArtifactError, apply_overrides
from onevision.trainjob.config import TRAINERS

STORE_SCHEMES = {"s3://": "s3://", "minio://": "s3://"}  # KFP's MinIO pipeline root is an S3 bucket


def check_trainer(trainer: str) -> bool:
    """True for a TrainJob, False for this task's own process."""
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r}; expected one of {list(TRAINERS)}")
    return trainer == "kubeflow"


def store_uri(artifact: ArtifactLike, what: str) -> str:
    """The s3:// URI of an artifact, as the TrainJob's nodes read it."""
    for scheme, s3 in STORE_SCHEMES.items():
        if artifact.uri.startswith(scheme):
            return s3 + artifact.uri[len(scheme):]
    raise MissingArtifactError(f"trainer 'kubeflow' needs artifact '{what}' in the S3 store, but its uri is "
                               f"{artifact.uri!r}: run the pipeline with an s3:// (or MinIO) pipeline root")


def trainjob_config(overrides: Mapping[str, Any], s3_endpoint: str, s3_secret: str) -> Any:
    from onevision.trainjob.config import TrainJobConfig

    base = TrainJobConfig(s3_endpoint=s3_endpoint, s3_secret=s3_secret)
    return apply_overrides(base, dict(overrides), "trainjob config")


def step_args(command: list[str], artifacts: Mapping[str, tuple[ArtifactLike | None, str]], config: Any,
              **options: Any) -> list[str]:
    """`onevision train <step>` with each artifact's URI (`--flag uri`), the options and `--config` JSON."""
    args = list(command)
    for flag, (artifact, what) in artifacts.items():
        if artifact is not None:
            args += [f"--{flag}", store_uri(artifact, what)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return [*args, "--config", json.dumps(dataclasses.asdict(config), sort_keys=True)]


def run_on_trainjob(args: list[str], config: Any) -> dict[str, float]:
    """Submit and wait; the scalars the task logs (seconds, nodes, processes per node)."""
    from onevision.trainjob.submit import run_trainjob

    start = time.perf_counter()
    run_trainjob(args, config, echo=lambda line: print(line, flush=True))
    return {"seconds": round(time.perf_counter() - start, 2), "nodes": config.nodes,
            "procs_per_node": config.procs_per_node}


def train_on_trainjob(command: list[str], artifacts: Mapping[str, tuple[ArtifactLike | None, str]], config: Any,
                      out: ArtifactLike, metrics: Any, trainjob: Mapping[str, Any], s3_endpoint: str, s3_secret: str,
                      logged: Mapping[str, float] | None = None, **options: Any) -> None:
    """A training component's whole kubeflow branch: the step as a TrainJob writing `out` (its key in `artifacts`
    is "out"), the scalars logged to `metrics` and `out`'s metadata (`logged` first)."""
    from components.runtime import log_scalars, output_dir

    output_dir(out)
    args = step_args(command, artifacts, config, **options)
    scalars = run_on_trainjob(args, trainjob_config(trainjob, s3_endpoint, s3_secret))
    out.metadata.update(log_scalars(metrics, {**(logged or {}), **scalars}))
