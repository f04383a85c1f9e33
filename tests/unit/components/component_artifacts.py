"""KFP artifact objects over local directories, the way a component body receives them at run time."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from kfp import dsl

A = TypeVar("A", bound=dsl.Artifact)

# evaluation config over the tiny preset: a few test queries and latency samples, since a component test
# checks the wiring of one library call, not the model's quality
QUICK_EVAL = {"harness": {"max_queries": 12, "latency_samples": 1}}


def artifact(kind: type[A], path: Path, /, **metadata: object) -> A:
    """An artifact of `kind` whose local path is `path` (kfp: a local URI is its own path)."""
    return kind(name=Path(path).name, uri=str(path), metadata=dict(metadata))


def metrics(path: Path) -> dsl.Metrics:
    return artifact(dsl.Metrics, path)
